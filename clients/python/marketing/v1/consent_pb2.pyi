import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConsentType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSENT_TYPE_UNSPECIFIED: _ClassVar[ConsentType]
    CONSENT_TYPE_EMAIL: _ClassVar[ConsentType]
    CONSENT_TYPE_SMS: _ClassVar[ConsentType]
    CONSENT_TYPE_PUSH: _ClassVar[ConsentType]
    CONSENT_TYPE_MARKETING: _ClassVar[ConsentType]
    CONSENT_TYPE_ANALYTICS: _ClassVar[ConsentType]
CONSENT_TYPE_UNSPECIFIED: ConsentType
CONSENT_TYPE_EMAIL: ConsentType
CONSENT_TYPE_SMS: ConsentType
CONSENT_TYPE_PUSH: ConsentType
CONSENT_TYPE_MARKETING: ConsentType
CONSENT_TYPE_ANALYTICS: ConsentType

class Consent(_message.Message):
    __slots__ = ("name", "type", "granted", "source", "ip_address", "user_agent", "consent_time", "record_time", "phone_number", "wording_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_TIME_FIELD_NUMBER: _ClassVar[int]
    RECORD_TIME_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    WORDING_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: ConsentType
    granted: bool
    source: str
    ip_address: str
    user_agent: str
    consent_time: _timestamp_pb2.Timestamp
    record_time: _timestamp_pb2.Timestamp
    phone_number: str
    wording_version: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[ConsentType, str]] = ..., granted: _Optional[bool] = ..., source: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ..., consent_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., record_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., phone_number: _Optional[str] = ..., wording_version: _Optional[str] = ...) -> None: ...
