import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from marketing.v1 import segment_pb2 as _segment_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Flow(_message.Message):
    __slots__ = ("name", "display_name", "description", "trigger", "entry_rule", "exit_conditions", "live", "provider", "completes_after", "built_in", "active_enrolments", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    ENTRY_RULE_FIELD_NUMBER: _ClassVar[int]
    EXIT_CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    COMPLETES_AFTER_FIELD_NUMBER: _ClassVar[int]
    BUILT_IN_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_ENROLMENTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    description: str
    trigger: FlowTrigger
    entry_rule: EntryRule
    exit_conditions: _containers.RepeatedCompositeFieldContainer[ExitCondition]
    live: bool
    provider: ProviderFlow
    completes_after: _duration_pb2.Duration
    built_in: bool
    active_enrolments: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., trigger: _Optional[_Union[FlowTrigger, _Mapping]] = ..., entry_rule: _Optional[_Union[EntryRule, _Mapping]] = ..., exit_conditions: _Optional[_Iterable[_Union[ExitCondition, _Mapping]]] = ..., live: _Optional[bool] = ..., provider: _Optional[_Union[ProviderFlow, _Mapping]] = ..., completes_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., built_in: _Optional[bool] = ..., active_enrolments: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FlowTrigger(_message.Message):
    __slots__ = ("event", "segment_entered", "no_purchase_for", "registration", "back_in_stock")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ENTERED_FIELD_NUMBER: _ClassVar[int]
    NO_PURCHASE_FOR_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    BACK_IN_STOCK_FIELD_NUMBER: _ClassVar[int]
    event: EventTrigger
    segment_entered: str
    no_purchase_for: _duration_pb2.Duration
    registration: bool
    back_in_stock: bool
    def __init__(self, event: _Optional[_Union[EventTrigger, _Mapping]] = ..., segment_entered: _Optional[str] = ..., no_purchase_for: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., registration: _Optional[bool] = ..., back_in_stock: _Optional[bool] = ...) -> None: ...

class EventTrigger(_message.Message):
    __slots__ = ("event_type", "contact_filter")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FILTER_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    contact_filter: _segment_pb2.SegmentFilter
    def __init__(self, event_type: _Optional[str] = ..., contact_filter: _Optional[_Union[_segment_pb2.SegmentFilter, _Mapping]] = ...) -> None: ...

class EntryRule(_message.Message):
    __slots__ = ("kind", "key_property", "cooldown")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[EntryRule.Kind]
        KIND_ONCE_PER_CONTACT: _ClassVar[EntryRule.Kind]
        KIND_ONCE_PER_KEY: _ClassVar[EntryRule.Kind]
        KIND_REENTER_AFTER_EXIT: _ClassVar[EntryRule.Kind]
        KIND_REENTER_AFTER_COOLDOWN: _ClassVar[EntryRule.Kind]
    KIND_UNSPECIFIED: EntryRule.Kind
    KIND_ONCE_PER_CONTACT: EntryRule.Kind
    KIND_ONCE_PER_KEY: EntryRule.Kind
    KIND_REENTER_AFTER_EXIT: EntryRule.Kind
    KIND_REENTER_AFTER_COOLDOWN: EntryRule.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_FIELD_NUMBER: _ClassVar[int]
    kind: EntryRule.Kind
    key_property: str
    cooldown: _duration_pb2.Duration
    def __init__(self, kind: _Optional[_Union[EntryRule.Kind, str]] = ..., key_property: _Optional[str] = ..., cooldown: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ExitCondition(_message.Message):
    __slots__ = ("event_type", "segment_left", "unsubscribed")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_LEFT_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    segment_left: str
    unsubscribed: bool
    def __init__(self, event_type: _Optional[str] = ..., segment_left: _Optional[str] = ..., unsubscribed: _Optional[bool] = ...) -> None: ...

class ProviderFlow(_message.Message):
    __slots__ = ("klaviyo_start_metric", "klaviyo_exit_metric", "klaviyo_property", "activecampaign_automation_id", "klaviyo_flow_id")
    KLAVIYO_START_METRIC_FIELD_NUMBER: _ClassVar[int]
    KLAVIYO_EXIT_METRIC_FIELD_NUMBER: _ClassVar[int]
    KLAVIYO_PROPERTY_FIELD_NUMBER: _ClassVar[int]
    ACTIVECAMPAIGN_AUTOMATION_ID_FIELD_NUMBER: _ClassVar[int]
    KLAVIYO_FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    klaviyo_start_metric: str
    klaviyo_exit_metric: str
    klaviyo_property: str
    activecampaign_automation_id: str
    klaviyo_flow_id: str
    def __init__(self, klaviyo_start_metric: _Optional[str] = ..., klaviyo_exit_metric: _Optional[str] = ..., klaviyo_property: _Optional[str] = ..., activecampaign_automation_id: _Optional[str] = ..., klaviyo_flow_id: _Optional[str] = ...) -> None: ...

class Enrolment(_message.Message):
    __slots__ = ("name", "contact", "email", "state", "cause", "entry_key", "create_time", "end_time", "exit_reason", "rejection_reason")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Enrolment.State]
        STATE_ACTIVE: _ClassVar[Enrolment.State]
        STATE_COMPLETED: _ClassVar[Enrolment.State]
        STATE_EXITED: _ClassVar[Enrolment.State]
        STATE_REJECTED: _ClassVar[Enrolment.State]
    STATE_UNSPECIFIED: Enrolment.State
    STATE_ACTIVE: Enrolment.State
    STATE_COMPLETED: Enrolment.State
    STATE_EXITED: Enrolment.State
    STATE_REJECTED: Enrolment.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    EXIT_REASON_FIELD_NUMBER: _ClassVar[int]
    REJECTION_REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    contact: str
    email: str
    state: Enrolment.State
    cause: EnrolmentCause
    entry_key: str
    create_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    exit_reason: str
    rejection_reason: str
    def __init__(self, name: _Optional[str] = ..., contact: _Optional[str] = ..., email: _Optional[str] = ..., state: _Optional[_Union[Enrolment.State, str]] = ..., cause: _Optional[_Union[EnrolmentCause, _Mapping]] = ..., entry_key: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exit_reason: _Optional[str] = ..., rejection_reason: _Optional[str] = ...) -> None: ...

class EnrolmentCause(_message.Message):
    __slots__ = ("event_id", "segment_entered", "last_purchase_time", "registration_time", "back_in_stock_subscription")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ENTERED_FIELD_NUMBER: _ClassVar[int]
    LAST_PURCHASE_TIME_FIELD_NUMBER: _ClassVar[int]
    REGISTRATION_TIME_FIELD_NUMBER: _ClassVar[int]
    BACK_IN_STOCK_SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    segment_entered: str
    last_purchase_time: _timestamp_pb2.Timestamp
    registration_time: _timestamp_pb2.Timestamp
    back_in_stock_subscription: str
    def __init__(self, event_id: _Optional[str] = ..., segment_entered: _Optional[str] = ..., last_purchase_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., registration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., back_in_stock_subscription: _Optional[str] = ...) -> None: ...
