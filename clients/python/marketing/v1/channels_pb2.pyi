import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushPlatform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUSH_PLATFORM_UNSPECIFIED: _ClassVar[PushPlatform]
    PUSH_PLATFORM_IOS: _ClassVar[PushPlatform]
    PUSH_PLATFORM_ANDROID: _ClassVar[PushPlatform]

class PushVendor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUSH_VENDOR_UNSPECIFIED: _ClassVar[PushVendor]
    PUSH_VENDOR_APNS: _ClassVar[PushVendor]
    PUSH_VENDOR_FCM: _ClassVar[PushVendor]
PUSH_PLATFORM_UNSPECIFIED: PushPlatform
PUSH_PLATFORM_IOS: PushPlatform
PUSH_PLATFORM_ANDROID: PushPlatform
PUSH_VENDOR_UNSPECIFIED: PushVendor
PUSH_VENDOR_APNS: PushVendor
PUSH_VENDOR_FCM: PushVendor

class PushToken(_message.Message):
    __slots__ = ("name", "token", "platform", "vendor", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    token: str
    platform: PushPlatform
    vendor: PushVendor
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., token: _Optional[str] = ..., platform: _Optional[_Union[PushPlatform, str]] = ..., vendor: _Optional[_Union[PushVendor, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
