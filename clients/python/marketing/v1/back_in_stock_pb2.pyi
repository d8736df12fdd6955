import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from marketing.v1 import event_pb2 as _event_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BackInStockSubscription(_message.Message):
    __slots__ = ("name", "contact", "email", "product_id", "variant_id", "state", "reason", "source", "create_time", "end_time", "enrolment")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[BackInStockSubscription.State]
        STATE_WAITING: _ClassVar[BackInStockSubscription.State]
        STATE_NOTIFYING: _ClassVar[BackInStockSubscription.State]
        STATE_NOTIFIED: _ClassVar[BackInStockSubscription.State]
        STATE_SKIPPED: _ClassVar[BackInStockSubscription.State]
        STATE_REMOVED: _ClassVar[BackInStockSubscription.State]
    STATE_UNSPECIFIED: BackInStockSubscription.State
    STATE_WAITING: BackInStockSubscription.State
    STATE_NOTIFYING: BackInStockSubscription.State
    STATE_NOTIFIED: BackInStockSubscription.State
    STATE_SKIPPED: BackInStockSubscription.State
    STATE_REMOVED: BackInStockSubscription.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    ENROLMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    contact: str
    email: str
    product_id: str
    variant_id: str
    state: BackInStockSubscription.State
    reason: str
    source: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    enrolment: str
    def __init__(self, name: _Optional[str] = ..., contact: _Optional[str] = ..., email: _Optional[str] = ..., product_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., state: _Optional[_Union[BackInStockSubscription.State, str]] = ..., reason: _Optional[str] = ..., source: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., enrolment: _Optional[str] = ...) -> None: ...

class Restock(_message.Message):
    __slots__ = ("name", "product_id", "variant_id", "product", "picked", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    PICKED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    product_id: str
    variant_id: str
    product: _event_pb2.Product
    picked: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., product_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., product: _Optional[_Union[_event_pb2.Product, _Mapping]] = ..., picked: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
