import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContactSync(_message.Message):
    __slots__ = ("name", "state", "total_contacts", "published_contacts", "imported_contacts", "failed_contacts", "published_chunks", "reported_chunks", "provider_jobs", "last_provider_job", "error", "create_time", "update_time", "end_time", "cancel_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[ContactSync.State]
        STATE_RUNNING: _ClassVar[ContactSync.State]
        STATE_SUCCEEDED: _ClassVar[ContactSync.State]
        STATE_FAILED: _ClassVar[ContactSync.State]
        STATE_CANCELLED: _ClassVar[ContactSync.State]
    STATE_UNSPECIFIED: ContactSync.State
    STATE_RUNNING: ContactSync.State
    STATE_SUCCEEDED: ContactSync.State
    STATE_FAILED: ContactSync.State
    STATE_CANCELLED: ContactSync.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_JOBS_FIELD_NUMBER: _ClassVar[int]
    LAST_PROVIDER_JOB_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CANCEL_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: ContactSync.State
    total_contacts: int
    published_contacts: int
    imported_contacts: int
    failed_contacts: int
    published_chunks: int
    reported_chunks: int
    provider_jobs: int
    last_provider_job: str
    error: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    cancel_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[ContactSync.State, str]] = ..., total_contacts: _Optional[int] = ..., published_contacts: _Optional[int] = ..., imported_contacts: _Optional[int] = ..., failed_contacts: _Optional[int] = ..., published_chunks: _Optional[int] = ..., reported_chunks: _Optional[int] = ..., provider_jobs: _Optional[int] = ..., last_provider_job: _Optional[str] = ..., error: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancel_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ContactSyncError(_message.Message):
    __slots__ = ("email", "reason", "create_time")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    email: str
    reason: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, email: _Optional[str] = ..., reason: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
