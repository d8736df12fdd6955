import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from marketing.v1 import back_in_stock_pb2 as _back_in_stock_pb2
from marketing.v1 import campaign_pb2 as _campaign_pb2
from marketing.v1 import channels_pb2 as _channels_pb2
from marketing.v1 import consent_pb2 as _consent_pb2
from marketing.v1 import contact_pb2 as _contact_pb2
from marketing.v1 import contact_sync_pb2 as _contact_sync_pb2
from marketing.v1 import event_pb2 as _event_pb2
from marketing.v1 import flow_pb2 as _flow_pb2
from marketing.v1 import metrics_pb2 as _metrics_pb2
from marketing.v1 import provider_catalogue_pb2 as _provider_catalogue_pb2
from marketing.v1 import segment_pb2 as _segment_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UpsertContactRequest(_message.Message):
    __slots__ = ("contact",)
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    contact: _contact_pb2.Contact
    def __init__(self, contact: _Optional[_Union[_contact_pb2.Contact, _Mapping]] = ...) -> None: ...

class UpsertContactResponse(_message.Message):
    __slots__ = ("contact", "created")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    contact: _contact_pb2.Contact
    created: bool
    def __init__(self, contact: _Optional[_Union[_contact_pb2.Contact, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetContactRequest(_message.Message):
    __slots__ = ("name", "email")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class GetContactResponse(_message.Message):
    __slots__ = ("contact",)
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    contact: _contact_pb2.Contact
    def __init__(self, contact: _Optional[_Union[_contact_pb2.Contact, _Mapping]] = ...) -> None: ...

class ListContactsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListContactsResponse(_message.Message):
    __slots__ = ("contacts", "next_page_token")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    contacts: _containers.RepeatedCompositeFieldContainer[_contact_pb2.Contact]
    next_page_token: str
    def __init__(self, contacts: _Optional[_Iterable[_Union[_contact_pb2.Contact, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteContactRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteContactResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReconcileContactRequest(_message.Message):
    __slots__ = ("name", "email")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    email: str
    def __init__(self, name: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class ContactDifference(_message.Message):
    __slots__ = ("field", "ours", "provider", "repair_queued", "note")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OURS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    REPAIR_QUEUED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    field: str
    ours: _struct_pb2.Value
    provider: _struct_pb2.Value
    repair_queued: bool
    note: str
    def __init__(self, field: _Optional[str] = ..., ours: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., provider: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., repair_queued: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class ReconcileContactResponse(_message.Message):
    __slots__ = ("name", "provider_id", "differences", "repair_queued")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    REPAIR_QUEUED_FIELD_NUMBER: _ClassVar[int]
    name: str
    provider_id: str
    differences: _containers.RepeatedCompositeFieldContainer[ContactDifference]
    repair_queued: bool
    def __init__(self, name: _Optional[str] = ..., provider_id: _Optional[str] = ..., differences: _Optional[_Iterable[_Union[ContactDifference, _Mapping]]] = ..., repair_queued: _Optional[bool] = ...) -> None: ...

class RecordConsentRequest(_message.Message):
    __slots__ = ("parent", "consent", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    consent: _consent_pb2.Consent
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., consent: _Optional[_Union[_consent_pb2.Consent, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RecordConsentResponse(_message.Message):
    __slots__ = ("consent",)
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    consent: _consent_pb2.Consent
    def __init__(self, consent: _Optional[_Union[_consent_pb2.Consent, _Mapping]] = ...) -> None: ...

class ListConsentsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConsentsResponse(_message.Message):
    __slots__ = ("consents", "next_page_token")
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    consents: _containers.RepeatedCompositeFieldContainer[_consent_pb2.Consent]
    next_page_token: str
    def __init__(self, consents: _Optional[_Iterable[_Union[_consent_pb2.Consent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SubscribeNewsletterRequest(_message.Message):
    __slots__ = ("email", "source", "ip_address", "user_agent", "request_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    source: str
    ip_address: str
    user_agent: str
    request_id: str
    def __init__(self, email: _Optional[str] = ..., source: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class SubscribeNewsletterResponse(_message.Message):
    __slots__ = ("contact", "consent")
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    contact: _contact_pb2.Contact
    consent: _consent_pb2.Consent
    def __init__(self, contact: _Optional[_Union[_contact_pb2.Contact, _Mapping]] = ..., consent: _Optional[_Union[_consent_pb2.Consent, _Mapping]] = ...) -> None: ...

class UnsubscribeRequest(_message.Message):
    __slots__ = ("email", "reason")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    email: str
    reason: str
    def __init__(self, email: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UnsubscribeResponse(_message.Message):
    __slots__ = ("changed",)
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    def __init__(self, changed: _Optional[bool] = ...) -> None: ...

class OptOutSmsRequest(_message.Message):
    __slots__ = ("phone_number", "source")
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    phone_number: str
    source: str
    def __init__(self, phone_number: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class OptOutSmsResponse(_message.Message):
    __slots__ = ("changed", "contacts")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    contacts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, changed: _Optional[bool] = ..., contacts: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterPushTokenRequest(_message.Message):
    __slots__ = ("parent", "push_token", "source", "ip_address", "user_agent", "permission_granted")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PUSH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_GRANTED_FIELD_NUMBER: _ClassVar[int]
    parent: str
    push_token: _channels_pb2.PushToken
    source: str
    ip_address: str
    user_agent: str
    permission_granted: bool
    def __init__(self, parent: _Optional[str] = ..., push_token: _Optional[_Union[_channels_pb2.PushToken, _Mapping]] = ..., source: _Optional[str] = ..., ip_address: _Optional[str] = ..., user_agent: _Optional[str] = ..., permission_granted: _Optional[bool] = ...) -> None: ...

class RegisterPushTokenResponse(_message.Message):
    __slots__ = ("push_token", "consent")
    PUSH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    push_token: _channels_pb2.PushToken
    consent: _consent_pb2.Consent
    def __init__(self, push_token: _Optional[_Union[_channels_pb2.PushToken, _Mapping]] = ..., consent: _Optional[_Union[_consent_pb2.Consent, _Mapping]] = ...) -> None: ...

class RevokePushPermissionRequest(_message.Message):
    __slots__ = ("parent", "source")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    parent: str
    source: str
    def __init__(self, parent: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class RevokePushPermissionResponse(_message.Message):
    __slots__ = ("changed", "deleted_tokens")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    DELETED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    deleted_tokens: int
    def __init__(self, changed: _Optional[bool] = ..., deleted_tokens: _Optional[int] = ...) -> None: ...

class ListPushTokensRequest(_message.Message):
    __slots__ = ("parent",)
    PARENT_FIELD_NUMBER: _ClassVar[int]
    parent: str
    def __init__(self, parent: _Optional[str] = ...) -> None: ...

class ListPushTokensResponse(_message.Message):
    __slots__ = ("push_tokens",)
    PUSH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    push_tokens: _containers.RepeatedCompositeFieldContainer[_channels_pb2.PushToken]
    def __init__(self, push_tokens: _Optional[_Iterable[_Union[_channels_pb2.PushToken, _Mapping]]] = ...) -> None: ...

class CreateCampaignRequest(_message.Message):
    __slots__ = ("campaign", "campaign_id")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign: _campaign_pb2.Campaign
    campaign_id: str
    def __init__(self, campaign: _Optional[_Union[_campaign_pb2.Campaign, _Mapping]] = ..., campaign_id: _Optional[str] = ...) -> None: ...

class CreateCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _campaign_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_campaign_pb2.Campaign, _Mapping]] = ...) -> None: ...

class GetCampaignRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _campaign_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_campaign_pb2.Campaign, _Mapping]] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "next_page_token")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[_campaign_pb2.Campaign]
    next_page_token: str
    def __init__(self, campaigns: _Optional[_Iterable[_Union[_campaign_pb2.Campaign, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateCampaignRequest(_message.Message):
    __slots__ = ("campaign", "update_mask")
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    campaign: _campaign_pb2.Campaign
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, campaign: _Optional[_Union[_campaign_pb2.Campaign, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _campaign_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_campaign_pb2.Campaign, _Mapping]] = ...) -> None: ...

class ScheduleCampaignRequest(_message.Message):
    __slots__ = ("name", "schedule")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    name: str
    schedule: _campaign_pb2.CampaignSchedule
    def __init__(self, name: _Optional[str] = ..., schedule: _Optional[_Union[_campaign_pb2.CampaignSchedule, _Mapping]] = ...) -> None: ...

class ScheduleCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _campaign_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_campaign_pb2.Campaign, _Mapping]] = ...) -> None: ...

class CancelCampaignRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _campaign_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_campaign_pb2.Campaign, _Mapping]] = ...) -> None: ...

class PreviewCampaignMessageRequest(_message.Message):
    __slots__ = ("name", "contact", "variant")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    contact: str
    variant: int
    def __init__(self, name: _Optional[str] = ..., contact: _Optional[str] = ..., variant: _Optional[int] = ...) -> None: ...

class PreviewCampaignMessageResponse(_message.Message):
    __slots__ = ("subject", "body", "variant", "test_recipient", "included", "exclusion_reason", "recorded")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    TEST_RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    INCLUDED_FIELD_NUMBER: _ClassVar[int]
    EXCLUSION_REASON_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    subject: str
    body: str
    variant: int
    test_recipient: bool
    included: bool
    exclusion_reason: str
    recorded: RecordedCampaignDecision
    def __init__(self, subject: _Optional[str] = ..., body: _Optional[str] = ..., variant: _Optional[int] = ..., test_recipient: _Optional[bool] = ..., included: _Optional[bool] = ..., exclusion_reason: _Optional[str] = ..., recorded: _Optional[_Union[RecordedCampaignDecision, _Mapping]] = ...) -> None: ...

class RecordedCampaignDecision(_message.Message):
    __slots__ = ("decision", "variant", "not_sent_reason", "provider_campaign_id", "decide_time")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    NOT_SENT_REASON_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    DECIDE_TIME_FIELD_NUMBER: _ClassVar[int]
    decision: str
    variant: int
    not_sent_reason: str
    provider_campaign_id: str
    decide_time: _timestamp_pb2.Timestamp
    def __init__(self, decision: _Optional[str] = ..., variant: _Optional[int] = ..., not_sent_reason: _Optional[str] = ..., provider_campaign_id: _Optional[str] = ..., decide_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ChooseAbTestWinnerRequest(_message.Message):
    __slots__ = ("name", "variant")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    name: str
    variant: int
    def __init__(self, name: _Optional[str] = ..., variant: _Optional[int] = ...) -> None: ...

class ChooseAbTestWinnerResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _campaign_pb2.Campaign
    def __init__(self, campaign: _Optional[_Union[_campaign_pb2.Campaign, _Mapping]] = ...) -> None: ...

class TrackEventRequest(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _event_pb2.Event
    def __init__(self, event: _Optional[_Union[_event_pb2.Event, _Mapping]] = ...) -> None: ...

class TrackEventResponse(_message.Message):
    __slots__ = ("event_id", "duplicate")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    duplicate: bool
    def __init__(self, event_id: _Optional[str] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class TrackEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_event_pb2.Event]
    def __init__(self, events: _Optional[_Iterable[_Union[_event_pb2.Event, _Mapping]]] = ...) -> None: ...

class TrackEventsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TrackEventResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[TrackEventResponse, _Mapping]]] = ...) -> None: ...

class GetQueueStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetQueueStatsResponse(_message.Message):
    __slots__ = ("pending", "in_flight", "failed", "oldest_pending_age")
    PENDING_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    OLDEST_PENDING_AGE_FIELD_NUMBER: _ClassVar[int]
    pending: int
    in_flight: int
    failed: int
    oldest_pending_age: _duration_pb2.Duration
    def __init__(self, pending: _Optional[int] = ..., in_flight: _Optional[int] = ..., failed: _Optional[int] = ..., oldest_pending_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class FailedDelivery(_message.Message):
    __slots__ = ("name", "kind", "event_id", "error", "attempts", "retry_count", "create_time", "fail_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FAIL_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    event_id: str
    error: str
    attempts: int
    retry_count: int
    create_time: _timestamp_pb2.Timestamp
    fail_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., event_id: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., retry_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fail_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListFailedDeliveriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFailedDeliveriesResponse(_message.Message):
    __slots__ = ("failed_deliveries", "next_page_token")
    FAILED_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    failed_deliveries: _containers.RepeatedCompositeFieldContainer[FailedDelivery]
    next_page_token: str
    def __init__(self, failed_deliveries: _Optional[_Iterable[_Union[FailedDelivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RetryFailedDeliveriesRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class RetryFailedDeliveriesResponse(_message.Message):
    __slots__ = ("retried",)
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    retried: int
    def __init__(self, retried: _Optional[int] = ...) -> None: ...

class StartContactSyncRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class StartContactSyncResponse(_message.Message):
    __slots__ = ("contact_sync",)
    CONTACT_SYNC_FIELD_NUMBER: _ClassVar[int]
    contact_sync: _contact_sync_pb2.ContactSync
    def __init__(self, contact_sync: _Optional[_Union[_contact_sync_pb2.ContactSync, _Mapping]] = ...) -> None: ...

class GetContactSyncRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetContactSyncResponse(_message.Message):
    __slots__ = ("contact_sync",)
    CONTACT_SYNC_FIELD_NUMBER: _ClassVar[int]
    contact_sync: _contact_sync_pb2.ContactSync
    def __init__(self, contact_sync: _Optional[_Union[_contact_sync_pb2.ContactSync, _Mapping]] = ...) -> None: ...

class ListContactSyncsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListContactSyncsResponse(_message.Message):
    __slots__ = ("contact_syncs", "next_page_token")
    CONTACT_SYNCS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    contact_syncs: _containers.RepeatedCompositeFieldContainer[_contact_sync_pb2.ContactSync]
    next_page_token: str
    def __init__(self, contact_syncs: _Optional[_Iterable[_Union[_contact_sync_pb2.ContactSync, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelContactSyncRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelContactSyncResponse(_message.Message):
    __slots__ = ("contact_sync",)
    CONTACT_SYNC_FIELD_NUMBER: _ClassVar[int]
    contact_sync: _contact_sync_pb2.ContactSync
    def __init__(self, contact_sync: _Optional[_Union[_contact_sync_pb2.ContactSync, _Mapping]] = ...) -> None: ...

class ListContactSyncErrorsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListContactSyncErrorsResponse(_message.Message):
    __slots__ = ("errors", "next_page_token")
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[_contact_sync_pb2.ContactSyncError]
    next_page_token: str
    def __init__(self, errors: _Optional[_Iterable[_Union[_contact_sync_pb2.ContactSyncError, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateSegmentRequest(_message.Message):
    __slots__ = ("segment", "segment_id")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    segment: _segment_pb2.Segment
    segment_id: str
    def __init__(self, segment: _Optional[_Union[_segment_pb2.Segment, _Mapping]] = ..., segment_id: _Optional[str] = ...) -> None: ...

class CreateSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: _segment_pb2.Segment
    def __init__(self, segment: _Optional[_Union[_segment_pb2.Segment, _Mapping]] = ...) -> None: ...

class GetSegmentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: _segment_pb2.Segment
    def __init__(self, segment: _Optional[_Union[_segment_pb2.Segment, _Mapping]] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments", "next_page_token")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[_segment_pb2.Segment]
    next_page_token: str
    def __init__(self, segments: _Optional[_Iterable[_Union[_segment_pb2.Segment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSegmentRequest(_message.Message):
    __slots__ = ("segment", "update_mask")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    segment: _segment_pb2.Segment
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, segment: _Optional[_Union[_segment_pb2.Segment, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: _segment_pb2.Segment
    def __init__(self, segment: _Optional[_Union[_segment_pb2.Segment, _Mapping]] = ...) -> None: ...

class DeleteSegmentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteSegmentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSegmentContactsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSegmentContactsResponse(_message.Message):
    __slots__ = ("contacts", "next_page_token")
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    contacts: _containers.RepeatedCompositeFieldContainer[_contact_pb2.Contact]
    next_page_token: str
    def __init__(self, contacts: _Optional[_Iterable[_Union[_contact_pb2.Contact, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AddToSegmentRequest(_message.Message):
    __slots__ = ("segment", "contacts")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    segment: str
    contacts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, segment: _Optional[str] = ..., contacts: _Optional[_Iterable[str]] = ...) -> None: ...

class AddToSegmentResponse(_message.Message):
    __slots__ = ("added",)
    ADDED_FIELD_NUMBER: _ClassVar[int]
    added: int
    def __init__(self, added: _Optional[int] = ...) -> None: ...

class RemoveFromSegmentRequest(_message.Message):
    __slots__ = ("segment", "contacts")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    segment: str
    contacts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, segment: _Optional[str] = ..., contacts: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveFromSegmentResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class PreviewSegmentRequest(_message.Message):
    __slots__ = ("filter", "sample_size")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    filter: _segment_pb2.SegmentFilter
    sample_size: int
    def __init__(self, filter: _Optional[_Union[_segment_pb2.SegmentFilter, _Mapping]] = ..., sample_size: _Optional[int] = ...) -> None: ...

class PreviewSegmentResponse(_message.Message):
    __slots__ = ("contact_count", "sample")
    CONTACT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    contact_count: int
    sample: _containers.RepeatedCompositeFieldContainer[_contact_pb2.Contact]
    def __init__(self, contact_count: _Optional[int] = ..., sample: _Optional[_Iterable[_Union[_contact_pb2.Contact, _Mapping]]] = ...) -> None: ...

class GetFlowRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetFlowResponse(_message.Message):
    __slots__ = ("flow",)
    FLOW_FIELD_NUMBER: _ClassVar[int]
    flow: _flow_pb2.Flow
    def __init__(self, flow: _Optional[_Union[_flow_pb2.Flow, _Mapping]] = ...) -> None: ...

class ListFlowsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFlowsResponse(_message.Message):
    __slots__ = ("flows", "next_page_token")
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flows: _containers.RepeatedCompositeFieldContainer[_flow_pb2.Flow]
    next_page_token: str
    def __init__(self, flows: _Optional[_Iterable[_Union[_flow_pb2.Flow, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateFlowRequest(_message.Message):
    __slots__ = ("flow", "update_mask")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    flow: _flow_pb2.Flow
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, flow: _Optional[_Union[_flow_pb2.Flow, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateFlowResponse(_message.Message):
    __slots__ = ("flow",)
    FLOW_FIELD_NUMBER: _ClassVar[int]
    flow: _flow_pb2.Flow
    def __init__(self, flow: _Optional[_Union[_flow_pb2.Flow, _Mapping]] = ...) -> None: ...

class ListEnrolmentsRequest(_message.Message):
    __slots__ = ("parent", "contact", "states", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    contact: str
    states: _containers.RepeatedScalarFieldContainer[_flow_pb2.Enrolment.State]
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., contact: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_flow_pb2.Enrolment.State, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEnrolmentsResponse(_message.Message):
    __slots__ = ("enrolments", "next_page_token")
    ENROLMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    enrolments: _containers.RepeatedCompositeFieldContainer[_flow_pb2.Enrolment]
    next_page_token: str
    def __init__(self, enrolments: _Optional[_Iterable[_Union[_flow_pb2.Enrolment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ExitEnrolmentRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ExitEnrolmentResponse(_message.Message):
    __slots__ = ("enrolment",)
    ENROLMENT_FIELD_NUMBER: _ClassVar[int]
    enrolment: _flow_pb2.Enrolment
    def __init__(self, enrolment: _Optional[_Union[_flow_pb2.Enrolment, _Mapping]] = ...) -> None: ...

class SubscribeBackInStockRequest(_message.Message):
    __slots__ = ("email", "product_id", "variant_id", "source")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    email: str
    product_id: str
    variant_id: str
    source: str
    def __init__(self, email: _Optional[str] = ..., product_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class SubscribeBackInStockResponse(_message.Message):
    __slots__ = ("subscription", "created")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    subscription: _back_in_stock_pb2.BackInStockSubscription
    created: bool
    def __init__(self, subscription: _Optional[_Union[_back_in_stock_pb2.BackInStockSubscription, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class UnsubscribeBackInStockRequest(_message.Message):
    __slots__ = ("email", "product_id", "variant_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    product_id: str
    variant_id: str
    def __init__(self, email: _Optional[str] = ..., product_id: _Optional[str] = ..., variant_id: _Optional[str] = ...) -> None: ...

class UnsubscribeBackInStockResponse(_message.Message):
    __slots__ = ("subscription",)
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    subscription: _back_in_stock_pb2.BackInStockSubscription
    def __init__(self, subscription: _Optional[_Union[_back_in_stock_pb2.BackInStockSubscription, _Mapping]] = ...) -> None: ...

class ListBackInStockSubscriptionsRequest(_message.Message):
    __slots__ = ("product_id", "variant_id", "contact", "states", "page_size", "page_token")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTACT_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    variant_id: str
    contact: str
    states: _containers.RepeatedScalarFieldContainer[_back_in_stock_pb2.BackInStockSubscription.State]
    page_size: int
    page_token: str
    def __init__(self, product_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., contact: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_back_in_stock_pb2.BackInStockSubscription.State, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBackInStockSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions", "next_page_token")
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[_back_in_stock_pb2.BackInStockSubscription]
    next_page_token: str
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[_back_in_stock_pb2.BackInStockSubscription, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class NotifyBackInStockRequest(_message.Message):
    __slots__ = ("product_id", "variant_id", "quantity", "product", "request_id")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    variant_id: str
    quantity: int
    product: _event_pb2.Product
    request_id: str
    def __init__(self, product_id: _Optional[str] = ..., variant_id: _Optional[str] = ..., quantity: _Optional[int] = ..., product: _Optional[_Union[_event_pb2.Product, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class NotifyBackInStockResponse(_message.Message):
    __slots__ = ("restock",)
    RESTOCK_FIELD_NUMBER: _ClassVar[int]
    restock: _back_in_stock_pb2.Restock
    def __init__(self, restock: _Optional[_Union[_back_in_stock_pb2.Restock, _Mapping]] = ...) -> None: ...

class GetCampaignMetricsRequest(_message.Message):
    __slots__ = ("campaign_id",)
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    def __init__(self, campaign_id: _Optional[str] = ...) -> None: ...

class GetCampaignMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _metrics_pb2.CampaignMetrics
    def __init__(self, metrics: _Optional[_Union[_metrics_pb2.CampaignMetrics, _Mapping]] = ...) -> None: ...

class GetFlowMetricsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetFlowMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _metrics_pb2.FlowMetrics
    def __init__(self, metrics: _Optional[_Union[_metrics_pb2.FlowMetrics, _Mapping]] = ...) -> None: ...

class GetDashboardMetricsRequest(_message.Message):
    __slots__ = ("start_time", "end_time")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetDashboardMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _metrics_pb2.DashboardMetrics
    def __init__(self, metrics: _Optional[_Union[_metrics_pb2.DashboardMetrics, _Mapping]] = ...) -> None: ...

class CompareCampaignsRequest(_message.Message):
    __slots__ = ("campaign_ids",)
    CAMPAIGN_IDS_FIELD_NUMBER: _ClassVar[int]
    campaign_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, campaign_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CompareCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "differences")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCES_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.CampaignMetrics]
    differences: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.MetricDifference]
    def __init__(self, campaigns: _Optional[_Iterable[_Union[_metrics_pb2.CampaignMetrics, _Mapping]]] = ..., differences: _Optional[_Iterable[_Union[_metrics_pb2.MetricDifference, _Mapping]]] = ...) -> None: ...

class ListProviderCampaignsRequest(_message.Message):
    __slots__ = ("types", "statuses", "page_size", "page_token")
    TYPES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedScalarFieldContainer[_provider_catalogue_pb2.ProviderCampaign.Type]
    statuses: _containers.RepeatedScalarFieldContainer[_provider_catalogue_pb2.ProviderCampaign.Status]
    page_size: int
    page_token: str
    def __init__(self, types: _Optional[_Iterable[_Union[_provider_catalogue_pb2.ProviderCampaign.Type, str]]] = ..., statuses: _Optional[_Iterable[_Union[_provider_catalogue_pb2.ProviderCampaign.Status, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProviderCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "next_page_token", "fetch_time")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FETCH_TIME_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[_provider_catalogue_pb2.ProviderCampaign]
    next_page_token: str
    fetch_time: _timestamp_pb2.Timestamp
    def __init__(self, campaigns: _Optional[_Iterable[_Union[_provider_catalogue_pb2.ProviderCampaign, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., fetch_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetProviderCampaignRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetProviderCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: _provider_catalogue_pb2.ProviderCampaign
    def __init__(self, campaign: _Optional[_Union[_provider_catalogue_pb2.ProviderCampaign, _Mapping]] = ...) -> None: ...

class ListProviderFlowsRequest(_message.Message):
    __slots__ = ("statuses", "page_size", "page_token")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[_provider_catalogue_pb2.ProviderFlowInfo.Status]
    page_size: int
    page_token: str
    def __init__(self, statuses: _Optional[_Iterable[_Union[_provider_catalogue_pb2.ProviderFlowInfo.Status, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListProviderFlowsResponse(_message.Message):
    __slots__ = ("flows", "next_page_token", "fetch_time")
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FETCH_TIME_FIELD_NUMBER: _ClassVar[int]
    flows: _containers.RepeatedCompositeFieldContainer[_provider_catalogue_pb2.ProviderFlowInfo]
    next_page_token: str
    fetch_time: _timestamp_pb2.Timestamp
    def __init__(self, flows: _Optional[_Iterable[_Union[_provider_catalogue_pb2.ProviderFlowInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., fetch_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
