import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CampaignChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMPAIGN_CHANNEL_UNSPECIFIED: _ClassVar[CampaignChannel]
    CAMPAIGN_CHANNEL_EMAIL: _ClassVar[CampaignChannel]
    CAMPAIGN_CHANNEL_SMS: _ClassVar[CampaignChannel]
    CAMPAIGN_CHANNEL_PUSH: _ClassVar[CampaignChannel]

class AbTestMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AB_TEST_METRIC_UNSPECIFIED: _ClassVar[AbTestMetric]
    AB_TEST_METRIC_OPEN_RATE: _ClassVar[AbTestMetric]
    AB_TEST_METRIC_CLICK_RATE: _ClassVar[AbTestMetric]
    AB_TEST_METRIC_PLACED_ORDER_RATE: _ClassVar[AbTestMetric]
CAMPAIGN_CHANNEL_UNSPECIFIED: CampaignChannel
CAMPAIGN_CHANNEL_EMAIL: CampaignChannel
CAMPAIGN_CHANNEL_SMS: CampaignChannel
CAMPAIGN_CHANNEL_PUSH: CampaignChannel
AB_TEST_METRIC_UNSPECIFIED: AbTestMetric
AB_TEST_METRIC_OPEN_RATE: AbTestMetric
AB_TEST_METRIC_CLICK_RATE: AbTestMetric
AB_TEST_METRIC_PLACED_ORDER_RATE: AbTestMetric

class CampaignContent(_message.Message):
    __slots__ = ("subject", "body")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    subject: str
    body: str
    def __init__(self, subject: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class AbTest(_message.Message):
    __slots__ = ("variants", "test_fraction", "metric", "window", "min_sample", "confidence", "decision")
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    TEST_FRACTION_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    variants: _containers.RepeatedCompositeFieldContainer[CampaignContent]
    test_fraction: float
    metric: AbTestMetric
    window: _duration_pb2.Duration
    min_sample: int
    confidence: float
    decision: AbTestDecision
    def __init__(self, variants: _Optional[_Iterable[_Union[CampaignContent, _Mapping]]] = ..., test_fraction: _Optional[float] = ..., metric: _Optional[_Union[AbTestMetric, str]] = ..., window: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., min_sample: _Optional[int] = ..., confidence: _Optional[float] = ..., decision: _Optional[_Union[AbTestDecision, _Mapping]] = ...) -> None: ...

class AbTestDecision(_message.Message):
    __slots__ = ("winner", "manual", "significant", "reason", "decide_time")
    WINNER_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    winner: int
    manual: bool
    significant: bool
    reason: str
    decide_time: _timestamp_pb2.Timestamp
    def __init__(self, winner: _Optional[int] = ..., manual: _Optional[bool] = ..., significant: _Optional[bool] = ..., reason: _Optional[str] = ..., decide_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CampaignSchedule(_message.Message):
    __slots__ = ("now", "send_time", "local_time")
    NOW_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    LOCAL_TIME_FIELD_NUMBER: _ClassVar[int]
    now: bool
    send_time: _timestamp_pb2.Timestamp
    local_time: LocalSendTime
    def __init__(self, now: _Optional[bool] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., local_time: _Optional[_Union[LocalSendTime, _Mapping]] = ...) -> None: ...

class LocalSendTime(_message.Message):
    __slots__ = ("date", "time", "default_time_zone")
    DATE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    date: str
    time: str
    default_time_zone: str
    def __init__(self, date: _Optional[str] = ..., time: _Optional[str] = ..., default_time_zone: _Optional[str] = ...) -> None: ...

class Campaign(_message.Message):
    __slots__ = ("name", "display_name", "channel", "audience", "content", "ab_test", "schedule", "state", "failure", "create_time", "update_time", "send_start_time", "counts", "parts")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Campaign.State]
        STATE_DRAFT: _ClassVar[Campaign.State]
        STATE_SCHEDULED: _ClassVar[Campaign.State]
        STATE_SENDING: _ClassVar[Campaign.State]
        STATE_TESTING: _ClassVar[Campaign.State]
        STATE_SENT: _ClassVar[Campaign.State]
        STATE_CANCELLED: _ClassVar[Campaign.State]
        STATE_FAILED: _ClassVar[Campaign.State]
    STATE_UNSPECIFIED: Campaign.State
    STATE_DRAFT: Campaign.State
    STATE_SCHEDULED: Campaign.State
    STATE_SENDING: Campaign.State
    STATE_TESTING: Campaign.State
    STATE_SENT: Campaign.State
    STATE_CANCELLED: Campaign.State
    STATE_FAILED: Campaign.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    AB_TEST_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SEND_START_TIME_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    channel: CampaignChannel
    audience: str
    content: CampaignContent
    ab_test: AbTest
    schedule: CampaignSchedule
    state: Campaign.State
    failure: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    send_start_time: _timestamp_pb2.Timestamp
    counts: CampaignAudienceCounts
    parts: _containers.RepeatedCompositeFieldContainer[CampaignPart]
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., channel: _Optional[_Union[CampaignChannel, str]] = ..., audience: _Optional[str] = ..., content: _Optional[_Union[CampaignContent, _Mapping]] = ..., ab_test: _Optional[_Union[AbTest, _Mapping]] = ..., schedule: _Optional[_Union[CampaignSchedule, _Mapping]] = ..., state: _Optional[_Union[Campaign.State, str]] = ..., failure: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., send_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., counts: _Optional[_Union[CampaignAudienceCounts, _Mapping]] = ..., parts: _Optional[_Iterable[_Union[CampaignPart, _Mapping]]] = ...) -> None: ...

class CampaignAudienceCounts(_message.Message):
    __slots__ = ("included", "excluded_suppressed", "excluded_no_consent", "excluded_capped", "excluded_no_phone", "excluded_no_device")
    INCLUDED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_NO_CONSENT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_CAPPED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_NO_PHONE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_NO_DEVICE_FIELD_NUMBER: _ClassVar[int]
    included: int
    excluded_suppressed: int
    excluded_no_consent: int
    excluded_capped: int
    excluded_no_phone: int
    excluded_no_device: int
    def __init__(self, included: _Optional[int] = ..., excluded_suppressed: _Optional[int] = ..., excluded_no_consent: _Optional[int] = ..., excluded_capped: _Optional[int] = ..., excluded_no_phone: _Optional[int] = ..., excluded_no_device: _Optional[int] = ...) -> None: ...

class CampaignPart(_message.Message):
    __slots__ = ("part", "variant", "remainder", "send_time", "state", "recipients", "imported", "refused", "provider_list_id", "provider_campaign_id", "error")
    PART_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    REMAINDER_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_LIST_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    part: int
    variant: int
    remainder: bool
    send_time: _timestamp_pb2.Timestamp
    state: str
    recipients: int
    imported: int
    refused: int
    provider_list_id: str
    provider_campaign_id: str
    error: str
    def __init__(self, part: _Optional[int] = ..., variant: _Optional[int] = ..., remainder: _Optional[bool] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[str] = ..., recipients: _Optional[int] = ..., imported: _Optional[int] = ..., refused: _Optional[int] = ..., provider_list_id: _Optional[str] = ..., provider_campaign_id: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...
