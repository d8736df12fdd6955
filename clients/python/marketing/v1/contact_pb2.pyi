import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from marketing.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Contact(_message.Message):
    __slots__ = ("name", "email", "user_id", "first_name", "last_name", "phone", "registration_time", "loyalty_tier", "lifetime_value", "order_count", "last_purchase_time", "location", "language", "timezone", "custom_properties", "email_opt_in", "sms_opt_in", "push_opt_in", "newsletter_member", "suppressed", "external_id", "create_time", "update_time", "last_sync_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_NAME_FIELD_NUMBER: _ClassVar[int]
    LAST_NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    LOYALTY_TIER_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_VALUE_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_PURCHASE_TIME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    EMAIL_OPT_IN_FIELD_NUMBER: _ClassVar[int]
    SMS_OPT_IN_FIELD_NUMBER: _ClassVar[int]
    PUSH_OPT_IN_FIELD_NUMBER: _ClassVar[int]
    NEWSLETTER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    user_id: str
    first_name: str
    last_name: str
    phone: str
    registration_time: _timestamp_pb2.Timestamp
    loyalty_tier: str
    lifetime_value: _common_pb2.Money
    order_count: int
    last_purchase_time: _timestamp_pb2.Timestamp
    location: str
    language: str
    timezone: str
    custom_properties: _struct_pb2.Struct
    email_opt_in: bool
    sms_opt_in: bool
    push_opt_in: bool
    newsletter_member: bool
    suppressed: bool
    external_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    last_sync_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ..., user_id: _Optional[str] = ..., first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., phone: _Optional[str] = ..., registration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., loyalty_tier: _Optional[str] = ..., lifetime_value: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., order_count: _Optional[int] = ..., last_purchase_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., location: _Optional[str] = ..., language: _Optional[str] = ..., timezone: _Optional[str] = ..., custom_properties: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., email_opt_in: _Optional[bool] = ..., sms_opt_in: _Optional[bool] = ..., push_opt_in: _Optional[bool] = ..., newsletter_member: _Optional[bool] = ..., suppressed: _Optional[bool] = ..., external_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_sync_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
