import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProviderFigures(_message.Message):
    __slots__ = ("source", "timeframe", "statistics", "fetch_time")
    class StatisticsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    FETCH_TIME_FIELD_NUMBER: _ClassVar[int]
    source: str
    timeframe: str
    statistics: _containers.ScalarMap[str, float]
    fetch_time: _timestamp_pb2.Timestamp
    def __init__(self, source: _Optional[str] = ..., timeframe: _Optional[str] = ..., statistics: _Optional[_Mapping[str, float]] = ..., fetch_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProviderCampaign(_message.Message):
    __slots__ = ("name", "external_id", "display_name", "type", "status", "provider_status", "provider", "send_time", "figures", "fetch_time")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[ProviderCampaign.Type]
        TYPE_EMAIL: _ClassVar[ProviderCampaign.Type]
        TYPE_SMS: _ClassVar[ProviderCampaign.Type]
        TYPE_PUSH: _ClassVar[ProviderCampaign.Type]
    TYPE_UNSPECIFIED: ProviderCampaign.Type
    TYPE_EMAIL: ProviderCampaign.Type
    TYPE_SMS: ProviderCampaign.Type
    TYPE_PUSH: ProviderCampaign.Type
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[ProviderCampaign.Status]
        STATUS_DRAFT: _ClassVar[ProviderCampaign.Status]
        STATUS_SCHEDULED: _ClassVar[ProviderCampaign.Status]
        STATUS_SENDING: _ClassVar[ProviderCampaign.Status]
        STATUS_SENT: _ClassVar[ProviderCampaign.Status]
        STATUS_PAUSED: _ClassVar[ProviderCampaign.Status]
        STATUS_ARCHIVED: _ClassVar[ProviderCampaign.Status]
    STATUS_UNSPECIFIED: ProviderCampaign.Status
    STATUS_DRAFT: ProviderCampaign.Status
    STATUS_SCHEDULED: ProviderCampaign.Status
    STATUS_SENDING: ProviderCampaign.Status
    STATUS_SENT: ProviderCampaign.Status
    STATUS_PAUSED: ProviderCampaign.Status
    STATUS_ARCHIVED: ProviderCampaign.Status
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    FETCH_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    external_id: str
    display_name: str
    type: ProviderCampaign.Type
    status: ProviderCampaign.Status
    provider_status: str
    provider: str
    send_time: _timestamp_pb2.Timestamp
    figures: ProviderFigures
    fetch_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., external_id: _Optional[str] = ..., display_name: _Optional[str] = ..., type: _Optional[_Union[ProviderCampaign.Type, str]] = ..., status: _Optional[_Union[ProviderCampaign.Status, str]] = ..., provider_status: _Optional[str] = ..., provider: _Optional[str] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., figures: _Optional[_Union[ProviderFigures, _Mapping]] = ..., fetch_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProviderFlowInfo(_message.Message):
    __slots__ = ("name", "external_id", "display_name", "status", "provider_status", "provider", "trigger_type", "figures", "fetch_time", "flows")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[ProviderFlowInfo.Status]
        STATUS_DRAFT: _ClassVar[ProviderFlowInfo.Status]
        STATUS_LIVE: _ClassVar[ProviderFlowInfo.Status]
        STATUS_PAUSED: _ClassVar[ProviderFlowInfo.Status]
        STATUS_ARCHIVED: _ClassVar[ProviderFlowInfo.Status]
    STATUS_UNSPECIFIED: ProviderFlowInfo.Status
    STATUS_DRAFT: ProviderFlowInfo.Status
    STATUS_LIVE: ProviderFlowInfo.Status
    STATUS_PAUSED: ProviderFlowInfo.Status
    STATUS_ARCHIVED: ProviderFlowInfo.Status
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    FETCH_TIME_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    name: str
    external_id: str
    display_name: str
    status: ProviderFlowInfo.Status
    provider_status: str
    provider: str
    trigger_type: str
    figures: ProviderFigures
    fetch_time: _timestamp_pb2.Timestamp
    flows: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., external_id: _Optional[str] = ..., display_name: _Optional[str] = ..., status: _Optional[_Union[ProviderFlowInfo.Status, str]] = ..., provider_status: _Optional[str] = ..., provider: _Optional[str] = ..., trigger_type: _Optional[str] = ..., figures: _Optional[_Union[ProviderFigures, _Mapping]] = ..., fetch_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., flows: _Optional[_Iterable[str]] = ...) -> None: ...
