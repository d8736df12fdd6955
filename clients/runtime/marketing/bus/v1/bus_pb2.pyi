import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_DELIVERED: _ClassVar[Outcome]
    OUTCOME_FAILED: _ClassVar[Outcome]
    OUTCOME_SUPERSEDED: _ClassVar[Outcome]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_DELIVERED: Outcome
OUTCOME_FAILED: Outcome
OUTCOME_SUPERSEDED: Outcome

class Delivery(_message.Message):
    __slots__ = ("id", "kind", "contact_key", "sequence", "payload_json", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTACT_KEY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    contact_key: str
    sequence: int
    payload_json: bytes
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., contact_key: _Optional[str] = ..., sequence: _Optional[int] = ..., payload_json: _Optional[bytes] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeliveryResult(_message.Message):
    __slots__ = ("delivery_id", "kind", "contact_key", "outcome", "provider_id", "error", "attempts", "finish_time")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTACT_KEY_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    kind: str
    contact_key: str
    outcome: Outcome
    provider_id: str
    error: str
    attempts: int
    finish_time: _timestamp_pb2.Timestamp
    def __init__(self, delivery_id: _Optional[str] = ..., kind: _Optional[str] = ..., contact_key: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., provider_id: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeliveryResults(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DeliveryResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DeliveryResult, _Mapping]]] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("delivery", "error", "attempts", "fail_time")
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAIL_TIME_FIELD_NUMBER: _ClassVar[int]
    delivery: Delivery
    error: str
    attempts: int
    fail_time: _timestamp_pb2.Timestamp
    def __init__(self, delivery: _Optional[_Union[Delivery, _Mapping]] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., fail_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
