import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from marketing.v1 import consent_pb2 as _consent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContactField(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTACT_FIELD_UNSPECIFIED: _ClassVar[ContactField]
    CONTACT_FIELD_EMAIL_DOMAIN: _ClassVar[ContactField]
    CONTACT_FIELD_FIRST_NAME: _ClassVar[ContactField]
    CONTACT_FIELD_LAST_NAME: _ClassVar[ContactField]
    CONTACT_FIELD_LOYALTY_TIER: _ClassVar[ContactField]
    CONTACT_FIELD_LIFETIME_VALUE: _ClassVar[ContactField]
    CONTACT_FIELD_ORDER_COUNT: _ClassVar[ContactField]
    CONTACT_FIELD_LAST_PURCHASE_TIME: _ClassVar[ContactField]
    CONTACT_FIELD_LOCATION: _ClassVar[ContactField]
    CONTACT_FIELD_LANGUAGE: _ClassVar[ContactField]
    CONTACT_FIELD_TIMEZONE: _ClassVar[ContactField]
    CONTACT_FIELD_REGISTRATION_TIME: _ClassVar[ContactField]

class ContactFlag(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTACT_FLAG_UNSPECIFIED: _ClassVar[ContactFlag]
    CONTACT_FLAG_SUPPRESSED: _ClassVar[ContactFlag]

class FilterOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILTER_OPERATOR_UNSPECIFIED: _ClassVar[FilterOperator]
    FILTER_OPERATOR_EQUALS: _ClassVar[FilterOperator]
    FILTER_OPERATOR_NOT_EQUALS: _ClassVar[FilterOperator]
    FILTER_OPERATOR_CONTAINS: _ClassVar[FilterOperator]
    FILTER_OPERATOR_GREATER_THAN: _ClassVar[FilterOperator]
    FILTER_OPERATOR_LESS_THAN: _ClassVar[FilterOperator]
    FILTER_OPERATOR_IN: _ClassVar[FilterOperator]
    FILTER_OPERATOR_NOT_IN: _ClassVar[FilterOperator]
    FILTER_OPERATOR_EXISTS: _ClassVar[FilterOperator]
    FILTER_OPERATOR_GREATER_THAN_OR_EQUAL: _ClassVar[FilterOperator]
    FILTER_OPERATOR_LESS_THAN_OR_EQUAL: _ClassVar[FilterOperator]
    FILTER_OPERATOR_WITHIN_LAST: _ClassVar[FilterOperator]
    FILTER_OPERATOR_BEFORE_LAST: _ClassVar[FilterOperator]
CONTACT_FIELD_UNSPECIFIED: ContactField
CONTACT_FIELD_EMAIL_DOMAIN: ContactField
CONTACT_FIELD_FIRST_NAME: ContactField
CONTACT_FIELD_LAST_NAME: ContactField
CONTACT_FIELD_LOYALTY_TIER: ContactField
CONTACT_FIELD_LIFETIME_VALUE: ContactField
CONTACT_FIELD_ORDER_COUNT: ContactField
CONTACT_FIELD_LAST_PURCHASE_TIME: ContactField
CONTACT_FIELD_LOCATION: ContactField
CONTACT_FIELD_LANGUAGE: ContactField
CONTACT_FIELD_TIMEZONE: ContactField
CONTACT_FIELD_REGISTRATION_TIME: ContactField
CONTACT_FLAG_UNSPECIFIED: ContactFlag
CONTACT_FLAG_SUPPRESSED: ContactFlag
FILTER_OPERATOR_UNSPECIFIED: FilterOperator
FILTER_OPERATOR_EQUALS: FilterOperator
FILTER_OPERATOR_NOT_EQUALS: FilterOperator
FILTER_OPERATOR_CONTAINS: FilterOperator
FILTER_OPERATOR_GREATER_THAN: FilterOperator
FILTER_OPERATOR_LESS_THAN: FilterOperator
FILTER_OPERATOR_IN: FilterOperator
FILTER_OPERATOR_NOT_IN: FilterOperator
FILTER_OPERATOR_EXISTS: FilterOperator
FILTER_OPERATOR_GREATER_THAN_OR_EQUAL: FilterOperator
FILTER_OPERATOR_LESS_THAN_OR_EQUAL: FilterOperator
FILTER_OPERATOR_WITHIN_LAST: FilterOperator
FILTER_OPERATOR_BEFORE_LAST: FilterOperator

class Segment(_message.Message):
    __slots__ = ("name", "display_name", "description", "kind", "filter", "contact_count", "built_in", "create_time", "update_time", "evaluate_time", "provider_list")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Segment.Kind]
        KIND_DYNAMIC: _ClassVar[Segment.Kind]
        KIND_MANUAL: _ClassVar[Segment.Kind]
    KIND_UNSPECIFIED: Segment.Kind
    KIND_DYNAMIC: Segment.Kind
    KIND_MANUAL: Segment.Kind
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CONTACT_COUNT_FIELD_NUMBER: _ClassVar[int]
    BUILT_IN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_LIST_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    description: str
    kind: Segment.Kind
    filter: SegmentFilter
    contact_count: int
    built_in: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    evaluate_time: _timestamp_pb2.Timestamp
    provider_list: ProviderList
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., kind: _Optional[_Union[Segment.Kind, str]] = ..., filter: _Optional[_Union[SegmentFilter, _Mapping]] = ..., contact_count: _Optional[int] = ..., built_in: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., evaluate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provider_list: _Optional[_Union[ProviderList, _Mapping]] = ...) -> None: ...

class ProviderList(_message.Message):
    __slots__ = ("list_id", "last_sync_time", "pending_changes")
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SYNC_TIME_FIELD_NUMBER: _ClassVar[int]
    PENDING_CHANGES_FIELD_NUMBER: _ClassVar[int]
    list_id: str
    last_sync_time: _timestamp_pb2.Timestamp
    pending_changes: int
    def __init__(self, list_id: _Optional[str] = ..., last_sync_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pending_changes: _Optional[int] = ...) -> None: ...

class SegmentFilter(_message.Message):
    __slots__ = ("field", "custom_property", "consent", "flag", "segment", "event", "operator", "value")
    AND_FIELD_NUMBER: _ClassVar[int]
    OR_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    field: ContactField
    custom_property: str
    consent: _consent_pb2.ConsentType
    flag: ContactFlag
    segment: str
    event: EventCondition
    operator: FilterOperator
    value: FilterValue
    def __init__(self, field: _Optional[_Union[ContactField, str]] = ..., custom_property: _Optional[str] = ..., consent: _Optional[_Union[_consent_pb2.ConsentType, str]] = ..., flag: _Optional[_Union[ContactFlag, str]] = ..., segment: _Optional[str] = ..., event: _Optional[_Union[EventCondition, _Mapping]] = ..., operator: _Optional[_Union[FilterOperator, str]] = ..., value: _Optional[_Union[FilterValue, _Mapping]] = ..., **kwargs) -> None: ...

class FilterValue(_message.Message):
    __slots__ = ("string_value", "number_value", "bool_value", "time_value", "duration_value", "string_list", "number_list")
    class StringList(_message.Message):
        __slots__ = ("values",)
        VALUES_FIELD_NUMBER: _ClassVar[int]
        values: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...
    class NumberList(_message.Message):
        __slots__ = ("values",)
        VALUES_FIELD_NUMBER: _ClassVar[int]
        values: _containers.RepeatedScalarFieldContainer[float]
        def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    NUMBER_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIME_VALUE_FIELD_NUMBER: _ClassVar[int]
    DURATION_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_LIST_FIELD_NUMBER: _ClassVar[int]
    NUMBER_LIST_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    number_value: float
    bool_value: bool
    time_value: _timestamp_pb2.Timestamp
    duration_value: _duration_pb2.Duration
    string_list: FilterValue.StringList
    number_list: FilterValue.NumberList
    def __init__(self, string_value: _Optional[str] = ..., number_value: _Optional[float] = ..., bool_value: _Optional[bool] = ..., time_value: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_value: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., string_list: _Optional[_Union[FilterValue.StringList, _Mapping]] = ..., number_list: _Optional[_Union[FilterValue.NumberList, _Mapping]] = ...) -> None: ...

class EventCondition(_message.Message):
    __slots__ = ("event_type", "within_last", "where", "measure")
    class Measure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MEASURE_UNSPECIFIED: _ClassVar[EventCondition.Measure]
        MEASURE_COUNT: _ClassVar[EventCondition.Measure]
        MEASURE_TOTAL_VALUE: _ClassVar[EventCondition.Measure]
    MEASURE_UNSPECIFIED: EventCondition.Measure
    MEASURE_COUNT: EventCondition.Measure
    MEASURE_TOTAL_VALUE: EventCondition.Measure
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    WITHIN_LAST_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    within_last: _duration_pb2.Duration
    where: _containers.RepeatedCompositeFieldContainer[EventPropertyFilter]
    measure: EventCondition.Measure
    def __init__(self, event_type: _Optional[str] = ..., within_last: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., where: _Optional[_Iterable[_Union[EventPropertyFilter, _Mapping]]] = ..., measure: _Optional[_Union[EventCondition.Measure, str]] = ...) -> None: ...

class EventPropertyFilter(_message.Message):
    __slots__ = ("property", "operator", "value")
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    property: str
    operator: FilterOperator
    value: FilterValue
    def __init__(self, property: _Optional[str] = ..., operator: _Optional[_Union[FilterOperator, str]] = ..., value: _Optional[_Union[FilterValue, _Mapping]] = ...) -> None: ...
