import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from marketing.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EngagementFigures(_message.Message):
    __slots__ = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed", "open_rate", "click_rate", "conversion_rate", "conversions", "revenue", "roi", "unsubscribe_rate")
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    CLICKED_FIELD_NUMBER: _ClassVar[int]
    BOUNCED_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    OPEN_RATE_FIELD_NUMBER: _ClassVar[int]
    CLICK_RATE_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    ROI_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBE_RATE_FIELD_NUMBER: _ClassVar[int]
    sent: int
    delivered: int
    opened: int
    clicked: int
    bounced: int
    unsubscribed: int
    open_rate: float
    click_rate: float
    conversion_rate: float
    conversions: int
    revenue: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    roi: float
    unsubscribe_rate: float
    def __init__(self, sent: _Optional[int] = ..., delivered: _Optional[int] = ..., opened: _Optional[int] = ..., clicked: _Optional[int] = ..., bounced: _Optional[int] = ..., unsubscribed: _Optional[int] = ..., open_rate: _Optional[float] = ..., click_rate: _Optional[float] = ..., conversion_rate: _Optional[float] = ..., conversions: _Optional[int] = ..., revenue: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ..., roi: _Optional[float] = ..., unsubscribe_rate: _Optional[float] = ...) -> None: ...

class CampaignMetrics(_message.Message):
    __slots__ = ("campaign_id", "figures", "first_time", "last_time")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    FIRST_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_TIME_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    figures: EngagementFigures
    first_time: _timestamp_pb2.Timestamp
    last_time: _timestamp_pb2.Timestamp
    def __init__(self, campaign_id: _Optional[str] = ..., figures: _Optional[_Union[EngagementFigures, _Mapping]] = ..., first_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FlowMessageMetrics(_message.Message):
    __slots__ = ("message_id", "figures")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    figures: EngagementFigures
    def __init__(self, message_id: _Optional[str] = ..., figures: _Optional[_Union[EngagementFigures, _Mapping]] = ...) -> None: ...

class FlowMetrics(_message.Message):
    __slots__ = ("flow", "figures", "enrolled", "completed", "exited", "completion_rate", "average_time_to_complete", "messages")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    EXITED_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_RATE_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_TIME_TO_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    flow: str
    figures: EngagementFigures
    enrolled: int
    completed: int
    exited: int
    completion_rate: float
    average_time_to_complete: _duration_pb2.Duration
    messages: _containers.RepeatedCompositeFieldContainer[FlowMessageMetrics]
    def __init__(self, flow: _Optional[str] = ..., figures: _Optional[_Union[EngagementFigures, _Mapping]] = ..., enrolled: _Optional[int] = ..., completed: _Optional[int] = ..., exited: _Optional[int] = ..., completion_rate: _Optional[float] = ..., average_time_to_complete: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[FlowMessageMetrics, _Mapping]]] = ...) -> None: ...

class CampaignSummary(_message.Message):
    __slots__ = ("campaign_id", "delivered", "open_rate", "click_rate", "revenue")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    OPEN_RATE_FIELD_NUMBER: _ClassVar[int]
    CLICK_RATE_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    delivered: int
    open_rate: float
    click_rate: float
    revenue: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    def __init__(self, campaign_id: _Optional[str] = ..., delivered: _Optional[int] = ..., open_rate: _Optional[float] = ..., click_rate: _Optional[float] = ..., revenue: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ...) -> None: ...

class FlowSummary(_message.Message):
    __slots__ = ("flow", "enrolled", "conversions", "revenue")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    CONVERSIONS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    flow: str
    enrolled: int
    conversions: int
    revenue: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    def __init__(self, flow: _Optional[str] = ..., enrolled: _Optional[int] = ..., conversions: _Optional[int] = ..., revenue: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ...) -> None: ...

class DataPoint(_message.Message):
    __slots__ = ("time", "value")
    TIME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    value: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[int] = ...) -> None: ...

class DashboardMetrics(_message.Message):
    __slots__ = ("total_contacts", "new_contacts", "contact_growth", "active_flows", "recent_campaigns", "revenue_30_days", "top_campaigns", "top_flows", "contact_growth_trend", "start_time", "end_time")
    TOTAL_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    NEW_CONTACTS_FIELD_NUMBER: _ClassVar[int]
    CONTACT_GROWTH_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FLOWS_FIELD_NUMBER: _ClassVar[int]
    RECENT_CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_30_DAYS_FIELD_NUMBER: _ClassVar[int]
    TOP_CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    TOP_FLOWS_FIELD_NUMBER: _ClassVar[int]
    CONTACT_GROWTH_TREND_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    total_contacts: int
    new_contacts: int
    contact_growth: float
    active_flows: int
    recent_campaigns: int
    revenue_30_days: _containers.RepeatedCompositeFieldContainer[_common_pb2.Money]
    top_campaigns: _containers.RepeatedCompositeFieldContainer[CampaignSummary]
    top_flows: _containers.RepeatedCompositeFieldContainer[FlowSummary]
    contact_growth_trend: _containers.RepeatedCompositeFieldContainer[DataPoint]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, total_contacts: _Optional[int] = ..., new_contacts: _Optional[int] = ..., contact_growth: _Optional[float] = ..., active_flows: _Optional[int] = ..., recent_campaigns: _Optional[int] = ..., revenue_30_days: _Optional[_Iterable[_Union[_common_pb2.Money, _Mapping]]] = ..., top_campaigns: _Optional[_Iterable[_Union[CampaignSummary, _Mapping]]] = ..., top_flows: _Optional[_Iterable[_Union[FlowSummary, _Mapping]]] = ..., contact_growth_trend: _Optional[_Iterable[_Union[DataPoint, _Mapping]]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MetricDifference(_message.Message):
    __slots__ = ("metric", "best_campaign_id", "best", "worst_campaign_id", "worst", "spread")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    BEST_CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    BEST_FIELD_NUMBER: _ClassVar[int]
    WORST_CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    WORST_FIELD_NUMBER: _ClassVar[int]
    SPREAD_FIELD_NUMBER: _ClassVar[int]
    metric: str
    best_campaign_id: str
    best: float
    worst_campaign_id: str
    worst: float
    spread: float
    def __init__(self, metric: _Optional[str] = ..., best_campaign_id: _Optional[str] = ..., best: _Optional[float] = ..., worst_campaign_id: _Optional[str] = ..., worst: _Optional[float] = ..., spread: _Optional[float] = ...) -> None: ...
