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

class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KIND_UNSPECIFIED: _ClassVar[Kind]
    KIND_EVENT_TRACKED: _ClassVar[Kind]
    KIND_CONTACT_UPSERTED: _ClassVar[Kind]
    KIND_CONSENT_CHANGED: _ClassVar[Kind]
    KIND_NEWSLETTER_SUBSCRIBED: _ClassVar[Kind]
    KIND_CONTACT_UNSUBSCRIBED: _ClassVar[Kind]
    KIND_CONTACT_ERASED: _ClassVar[Kind]
    KIND_LIST_MEMBERSHIP_CHANGED: _ClassVar[Kind]
    KIND_ENROLMENT_CHANGED: _ClassVar[Kind]
    KIND_PUSH_TOKEN_CHANGED: _ClassVar[Kind]
    KIND_ENROLMENTS_BEGUN: _ClassVar[Kind]

class ConsentType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSENT_TYPE_UNSPECIFIED: _ClassVar[ConsentType]
    CONSENT_TYPE_EMAIL: _ClassVar[ConsentType]
    CONSENT_TYPE_SMS: _ClassVar[ConsentType]
    CONSENT_TYPE_PUSH: _ClassVar[ConsentType]
    CONSENT_TYPE_MARKETING: _ClassVar[ConsentType]
    CONSENT_TYPE_ANALYTICS: _ClassVar[ConsentType]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_DELIVERED: _ClassVar[Outcome]
    OUTCOME_FAILED: _ClassVar[Outcome]
    OUTCOME_SUPERSEDED: _ClassVar[Outcome]

class EngagementType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENGAGEMENT_TYPE_UNSPECIFIED: _ClassVar[EngagementType]
    ENGAGEMENT_TYPE_DELIVERED: _ClassVar[EngagementType]
    ENGAGEMENT_TYPE_OPENED: _ClassVar[EngagementType]
    ENGAGEMENT_TYPE_CLICKED: _ClassVar[EngagementType]
    ENGAGEMENT_TYPE_BOUNCED: _ClassVar[EngagementType]
    ENGAGEMENT_TYPE_SPAM_COMPLAINT: _ClassVar[EngagementType]
    ENGAGEMENT_TYPE_UNSUBSCRIBED: _ClassVar[EngagementType]
    ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED: _ClassVar[EngagementType]
    ENGAGEMENT_TYPE_SENT: _ClassVar[EngagementType]

class CatalogueStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATALOGUE_STATUS_UNSPECIFIED: _ClassVar[CatalogueStatus]
    CATALOGUE_STATUS_DRAFT: _ClassVar[CatalogueStatus]
    CATALOGUE_STATUS_SCHEDULED: _ClassVar[CatalogueStatus]
    CATALOGUE_STATUS_SENDING: _ClassVar[CatalogueStatus]
    CATALOGUE_STATUS_SENT: _ClassVar[CatalogueStatus]
    CATALOGUE_STATUS_PAUSED: _ClassVar[CatalogueStatus]
    CATALOGUE_STATUS_ARCHIVED: _ClassVar[CatalogueStatus]

class CatalogueChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATALOGUE_CHANNEL_UNSPECIFIED: _ClassVar[CatalogueChannel]
    CATALOGUE_CHANNEL_EMAIL: _ClassVar[CatalogueChannel]
    CATALOGUE_CHANNEL_SMS: _ClassVar[CatalogueChannel]
    CATALOGUE_CHANNEL_PUSH: _ClassVar[CatalogueChannel]
KIND_UNSPECIFIED: Kind
KIND_EVENT_TRACKED: Kind
KIND_CONTACT_UPSERTED: Kind
KIND_CONSENT_CHANGED: Kind
KIND_NEWSLETTER_SUBSCRIBED: Kind
KIND_CONTACT_UNSUBSCRIBED: Kind
KIND_CONTACT_ERASED: Kind
KIND_LIST_MEMBERSHIP_CHANGED: Kind
KIND_ENROLMENT_CHANGED: Kind
KIND_PUSH_TOKEN_CHANGED: Kind
KIND_ENROLMENTS_BEGUN: Kind
CONSENT_TYPE_UNSPECIFIED: ConsentType
CONSENT_TYPE_EMAIL: ConsentType
CONSENT_TYPE_SMS: ConsentType
CONSENT_TYPE_PUSH: ConsentType
CONSENT_TYPE_MARKETING: ConsentType
CONSENT_TYPE_ANALYTICS: ConsentType
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_DELIVERED: Outcome
OUTCOME_FAILED: Outcome
OUTCOME_SUPERSEDED: Outcome
ENGAGEMENT_TYPE_UNSPECIFIED: EngagementType
ENGAGEMENT_TYPE_DELIVERED: EngagementType
ENGAGEMENT_TYPE_OPENED: EngagementType
ENGAGEMENT_TYPE_CLICKED: EngagementType
ENGAGEMENT_TYPE_BOUNCED: EngagementType
ENGAGEMENT_TYPE_SPAM_COMPLAINT: EngagementType
ENGAGEMENT_TYPE_UNSUBSCRIBED: EngagementType
ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED: EngagementType
ENGAGEMENT_TYPE_SENT: EngagementType
CATALOGUE_STATUS_UNSPECIFIED: CatalogueStatus
CATALOGUE_STATUS_DRAFT: CatalogueStatus
CATALOGUE_STATUS_SCHEDULED: CatalogueStatus
CATALOGUE_STATUS_SENDING: CatalogueStatus
CATALOGUE_STATUS_SENT: CatalogueStatus
CATALOGUE_STATUS_PAUSED: CatalogueStatus
CATALOGUE_STATUS_ARCHIVED: CatalogueStatus
CATALOGUE_CHANNEL_UNSPECIFIED: CatalogueChannel
CATALOGUE_CHANNEL_EMAIL: CatalogueChannel
CATALOGUE_CHANNEL_SMS: CatalogueChannel
CATALOGUE_CHANNEL_PUSH: CatalogueChannel

class Delivery(_message.Message):
    __slots__ = ("id", "kind", "contact_key", "sequence", "payload_json", "create_time", "type", "event_tracked", "contact_upserted", "consent_changed", "newsletter_subscribed", "contact_unsubscribed", "contact_erased", "list_membership_changed", "enrolment_changed", "push_token_changed", "enrolments_begun")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTACT_KEY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TRACKED_FIELD_NUMBER: _ClassVar[int]
    CONTACT_UPSERTED_FIELD_NUMBER: _ClassVar[int]
    CONSENT_CHANGED_FIELD_NUMBER: _ClassVar[int]
    NEWSLETTER_SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    CONTACT_UNSUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    CONTACT_ERASED_FIELD_NUMBER: _ClassVar[int]
    LIST_MEMBERSHIP_CHANGED_FIELD_NUMBER: _ClassVar[int]
    ENROLMENT_CHANGED_FIELD_NUMBER: _ClassVar[int]
    PUSH_TOKEN_CHANGED_FIELD_NUMBER: _ClassVar[int]
    ENROLMENTS_BEGUN_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    contact_key: str
    sequence: int
    payload_json: bytes
    create_time: _timestamp_pb2.Timestamp
    type: Kind
    event_tracked: EventTracked
    contact_upserted: ContactUpserted
    consent_changed: ConsentChanged
    newsletter_subscribed: NewsletterSubscribed
    contact_unsubscribed: ContactUnsubscribed
    contact_erased: ContactErased
    list_membership_changed: ListMembershipChanged
    enrolment_changed: EnrolmentChanged
    push_token_changed: PushTokenChanged
    enrolments_begun: EnrolmentsBegun
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., contact_key: _Optional[str] = ..., sequence: _Optional[int] = ..., payload_json: _Optional[bytes] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[Kind, str]] = ..., event_tracked: _Optional[_Union[EventTracked, _Mapping]] = ..., contact_upserted: _Optional[_Union[ContactUpserted, _Mapping]] = ..., consent_changed: _Optional[_Union[ConsentChanged, _Mapping]] = ..., newsletter_subscribed: _Optional[_Union[NewsletterSubscribed, _Mapping]] = ..., contact_unsubscribed: _Optional[_Union[ContactUnsubscribed, _Mapping]] = ..., contact_erased: _Optional[_Union[ContactErased, _Mapping]] = ..., list_membership_changed: _Optional[_Union[ListMembershipChanged, _Mapping]] = ..., enrolment_changed: _Optional[_Union[EnrolmentChanged, _Mapping]] = ..., push_token_changed: _Optional[_Union[PushTokenChanged, _Mapping]] = ..., enrolments_begun: _Optional[_Union[EnrolmentsBegun, _Mapping]] = ...) -> None: ...

class Money(_message.Message):
    __slots__ = ("currency_code", "units", "nanos")
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    NANOS_FIELD_NUMBER: _ClassVar[int]
    currency_code: str
    units: int
    nanos: int
    def __init__(self, currency_code: _Optional[str] = ..., units: _Optional[int] = ..., nanos: _Optional[int] = ...) -> None: ...

class EventTracked(_message.Message):
    __slots__ = ("event_id", "email", "metric", "occur_time", "properties_json", "product_viewed", "added_to_cart", "placed_order", "cart_abandoned", "custom")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_JSON_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_VIEWED_FIELD_NUMBER: _ClassVar[int]
    ADDED_TO_CART_FIELD_NUMBER: _ClassVar[int]
    PLACED_ORDER_FIELD_NUMBER: _ClassVar[int]
    CART_ABANDONED_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    email: str
    metric: str
    occur_time: _timestamp_pb2.Timestamp
    properties_json: bytes
    product_viewed: ProductViewed
    added_to_cart: AddedToCart
    placed_order: PlacedOrder
    cart_abandoned: CartAbandoned
    custom: CustomEvent
    def __init__(self, event_id: _Optional[str] = ..., email: _Optional[str] = ..., metric: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., properties_json: _Optional[bytes] = ..., product_viewed: _Optional[_Union[ProductViewed, _Mapping]] = ..., added_to_cart: _Optional[_Union[AddedToCart, _Mapping]] = ..., placed_order: _Optional[_Union[PlacedOrder, _Mapping]] = ..., cart_abandoned: _Optional[_Union[CartAbandoned, _Mapping]] = ..., custom: _Optional[_Union[CustomEvent, _Mapping]] = ...) -> None: ...

class Product(_message.Message):
    __slots__ = ("product_id", "sku", "title", "categories", "price", "url", "image_url")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    sku: str
    title: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    price: Money
    url: str
    image_url: str
    def __init__(self, product_id: _Optional[str] = ..., sku: _Optional[str] = ..., title: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., price: _Optional[_Union[Money, _Mapping]] = ..., url: _Optional[str] = ..., image_url: _Optional[str] = ...) -> None: ...

class LineItem(_message.Message):
    __slots__ = ("product_id", "sku", "title", "quantity", "unit_price", "url", "image_url")
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    sku: str
    title: str
    quantity: int
    unit_price: Money
    url: str
    image_url: str
    def __init__(self, product_id: _Optional[str] = ..., sku: _Optional[str] = ..., title: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[Money, _Mapping]] = ..., url: _Optional[str] = ..., image_url: _Optional[str] = ...) -> None: ...

class Cart(_message.Message):
    __slots__ = ("cart_id", "items", "total", "checkout_url", "last_activity_time")
    CART_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CHECKOUT_URL_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTIVITY_TIME_FIELD_NUMBER: _ClassVar[int]
    cart_id: str
    items: _containers.RepeatedCompositeFieldContainer[LineItem]
    total: Money
    checkout_url: str
    last_activity_time: _timestamp_pb2.Timestamp
    def __init__(self, cart_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., total: _Optional[_Union[Money, _Mapping]] = ..., checkout_url: _Optional[str] = ..., last_activity_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "lines", "total", "discount", "shipping", "coupon_codes")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_FIELD_NUMBER: _ClassVar[int]
    SHIPPING_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    lines: _containers.RepeatedCompositeFieldContainer[LineItem]
    total: Money
    discount: Money
    shipping: Money
    coupon_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, order_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., total: _Optional[_Union[Money, _Mapping]] = ..., discount: _Optional[_Union[Money, _Mapping]] = ..., shipping: _Optional[_Union[Money, _Mapping]] = ..., coupon_codes: _Optional[_Iterable[str]] = ...) -> None: ...

class ProductViewed(_message.Message):
    __slots__ = ("product",)
    PRODUCT_FIELD_NUMBER: _ClassVar[int]
    product: Product
    def __init__(self, product: _Optional[_Union[Product, _Mapping]] = ...) -> None: ...

class AddedToCart(_message.Message):
    __slots__ = ("item", "cart")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    CART_FIELD_NUMBER: _ClassVar[int]
    item: LineItem
    cart: Cart
    def __init__(self, item: _Optional[_Union[LineItem, _Mapping]] = ..., cart: _Optional[_Union[Cart, _Mapping]] = ...) -> None: ...

class PlacedOrder(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class CartAbandoned(_message.Message):
    __slots__ = ("cart",)
    CART_FIELD_NUMBER: _ClassVar[int]
    cart: Cart
    def __init__(self, cart: _Optional[_Union[Cart, _Mapping]] = ...) -> None: ...

class CustomEvent(_message.Message):
    __slots__ = ("name", "value", "properties_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: Money
    properties_json: bytes
    def __init__(self, name: _Optional[str] = ..., value: _Optional[_Union[Money, _Mapping]] = ..., properties_json: _Optional[bytes] = ...) -> None: ...

class ContactUpserted(_message.Message):
    __slots__ = ("contact_id", "email", "user_id", "first_name", "last_name", "phone", "registration_time", "loyalty_tier", "lifetime_value", "order_count", "last_purchase_time", "location", "language", "timezone", "custom_properties_json")
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
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
    CUSTOM_PROPERTIES_JSON_FIELD_NUMBER: _ClassVar[int]
    contact_id: str
    email: str
    user_id: str
    first_name: str
    last_name: str
    phone: str
    registration_time: _timestamp_pb2.Timestamp
    loyalty_tier: str
    lifetime_value: Money
    order_count: int
    last_purchase_time: _timestamp_pb2.Timestamp
    location: str
    language: str
    timezone: str
    custom_properties_json: bytes
    def __init__(self, contact_id: _Optional[str] = ..., email: _Optional[str] = ..., user_id: _Optional[str] = ..., first_name: _Optional[str] = ..., last_name: _Optional[str] = ..., phone: _Optional[str] = ..., registration_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., loyalty_tier: _Optional[str] = ..., lifetime_value: _Optional[_Union[Money, _Mapping]] = ..., order_count: _Optional[int] = ..., last_purchase_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., location: _Optional[str] = ..., language: _Optional[str] = ..., timezone: _Optional[str] = ..., custom_properties_json: _Optional[bytes] = ...) -> None: ...

class ConsentRecord(_message.Message):
    __slots__ = ("type", "granted", "source", "consent_time")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONSENT_TIME_FIELD_NUMBER: _ClassVar[int]
    type: ConsentType
    granted: bool
    source: str
    consent_time: _timestamp_pb2.Timestamp
    def __init__(self, type: _Optional[_Union[ConsentType, str]] = ..., granted: _Optional[bool] = ..., source: _Optional[str] = ..., consent_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OptIn(_message.Message):
    __slots__ = ("email", "sms", "push")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    SMS_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    email: bool
    sms: bool
    push: bool
    def __init__(self, email: _Optional[bool] = ..., sms: _Optional[bool] = ..., push: _Optional[bool] = ...) -> None: ...

class ConsentState(_message.Message):
    __slots__ = ("contact_id", "email", "phone", "opt_in", "newsletter_member", "suppressed", "records")
    CONTACT_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    OPT_IN_FIELD_NUMBER: _ClassVar[int]
    NEWSLETTER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    contact_id: str
    email: str
    phone: str
    opt_in: OptIn
    newsletter_member: bool
    suppressed: bool
    records: _containers.RepeatedCompositeFieldContainer[ConsentRecord]
    def __init__(self, contact_id: _Optional[str] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., opt_in: _Optional[_Union[OptIn, _Mapping]] = ..., newsletter_member: _Optional[bool] = ..., suppressed: _Optional[bool] = ..., records: _Optional[_Iterable[_Union[ConsentRecord, _Mapping]]] = ...) -> None: ...

class ConsentChanged(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: ConsentState
    def __init__(self, state: _Optional[_Union[ConsentState, _Mapping]] = ...) -> None: ...

class NewsletterSubscribed(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: ConsentState
    def __init__(self, state: _Optional[_Union[ConsentState, _Mapping]] = ...) -> None: ...

class ContactUnsubscribed(_message.Message):
    __slots__ = ("state", "reason")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    state: ConsentState
    reason: str
    def __init__(self, state: _Optional[_Union[ConsentState, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ContactErased(_message.Message):
    __slots__ = ("email", "external_id")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    email: str
    external_id: str
    def __init__(self, email: _Optional[str] = ..., external_id: _Optional[str] = ...) -> None: ...

class ListMembershipChanged(_message.Message):
    __slots__ = ("segment_id", "list_id", "list_name", "email", "member", "link_id")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    LIST_NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    list_id: str
    list_name: str
    email: str
    member: bool
    link_id: str
    def __init__(self, segment_id: _Optional[str] = ..., list_id: _Optional[str] = ..., list_name: _Optional[str] = ..., email: _Optional[str] = ..., member: _Optional[bool] = ..., link_id: _Optional[str] = ...) -> None: ...

class PushTokenChanged(_message.Message):
    __slots__ = ("email", "phone", "token", "platform", "vendor", "registered")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    email: str
    phone: str
    token: str
    platform: str
    vendor: str
    registered: bool
    def __init__(self, email: _Optional[str] = ..., phone: _Optional[str] = ..., token: _Optional[str] = ..., platform: _Optional[str] = ..., vendor: _Optional[str] = ..., registered: _Optional[bool] = ...) -> None: ...

class EnrolmentChanged(_message.Message):
    __slots__ = ("flow_id", "enrolment_id", "email", "active", "exit_reason", "start_metric", "exit_metric", "property", "automation_id", "context_json", "entry_key", "change_time", "others_active")
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    EXIT_REASON_FIELD_NUMBER: _ClassVar[int]
    START_METRIC_FIELD_NUMBER: _ClassVar[int]
    EXIT_METRIC_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_FIELD_NUMBER: _ClassVar[int]
    AUTOMATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_KEY_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TIME_FIELD_NUMBER: _ClassVar[int]
    OTHERS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    flow_id: str
    enrolment_id: str
    email: str
    active: bool
    exit_reason: str
    start_metric: str
    exit_metric: str
    property: str
    automation_id: str
    context_json: bytes
    entry_key: str
    change_time: _timestamp_pb2.Timestamp
    others_active: bool
    def __init__(self, flow_id: _Optional[str] = ..., enrolment_id: _Optional[str] = ..., email: _Optional[str] = ..., active: _Optional[bool] = ..., exit_reason: _Optional[str] = ..., start_metric: _Optional[str] = ..., exit_metric: _Optional[str] = ..., property: _Optional[str] = ..., automation_id: _Optional[str] = ..., context_json: _Optional[bytes] = ..., entry_key: _Optional[str] = ..., change_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., others_active: _Optional[bool] = ...) -> None: ...

class EnrolmentsBegun(_message.Message):
    __slots__ = ("begun",)
    BEGUN_FIELD_NUMBER: _ClassVar[int]
    begun: _containers.RepeatedCompositeFieldContainer[EnrolmentChanged]
    def __init__(self, begun: _Optional[_Iterable[_Union[EnrolmentChanged, _Mapping]]] = ...) -> None: ...

class DeliveryResult(_message.Message):
    __slots__ = ("delivery_id", "kind", "contact_key", "outcome", "provider_id", "error", "attempts", "finish_time", "type")
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTACT_KEY_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    delivery_id: str
    kind: str
    contact_key: str
    outcome: Outcome
    provider_id: str
    error: str
    attempts: int
    finish_time: _timestamp_pb2.Timestamp
    type: Kind
    def __init__(self, delivery_id: _Optional[str] = ..., kind: _Optional[str] = ..., contact_key: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., provider_id: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., type: _Optional[_Union[Kind, str]] = ...) -> None: ...

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

class SyncedContact(_message.Message):
    __slots__ = ("profile", "consent")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    profile: ContactUpserted
    consent: ConsentState
    def __init__(self, profile: _Optional[_Union[ContactUpserted, _Mapping]] = ..., consent: _Optional[_Union[ConsentState, _Mapping]] = ...) -> None: ...

class ContactSyncChunk(_message.Message):
    __slots__ = ("sync_id", "sequence", "contacts", "outbox_sequence")
    SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CONTACTS_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sync_id: str
    sequence: int
    contacts: _containers.RepeatedCompositeFieldContainer[SyncedContact]
    outbox_sequence: int
    def __init__(self, sync_id: _Optional[str] = ..., sequence: _Optional[int] = ..., contacts: _Optional[_Iterable[_Union[SyncedContact, _Mapping]]] = ..., outbox_sequence: _Optional[int] = ...) -> None: ...

class ContactSyncConsent(_message.Message):
    __slots__ = ("imported", "outbox_sequence", "people")
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PEOPLE_FIELD_NUMBER: _ClassVar[int]
    imported: ContactSyncChunkResult
    outbox_sequence: int
    people: _containers.RepeatedCompositeFieldContainer[ConsentState]
    def __init__(self, imported: _Optional[_Union[ContactSyncChunkResult, _Mapping]] = ..., outbox_sequence: _Optional[int] = ..., people: _Optional[_Iterable[_Union[ConsentState, _Mapping]]] = ...) -> None: ...

class ContactSyncFailure(_message.Message):
    __slots__ = ("email", "reason")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    email: str
    reason: str
    def __init__(self, email: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ContactSyncChunkResult(_message.Message):
    __slots__ = ("sync_id", "sequence", "imported", "failures", "error", "job_ids", "finish_time")
    SYNC_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    sync_id: str
    sequence: int
    imported: int
    failures: _containers.RepeatedCompositeFieldContainer[ContactSyncFailure]
    error: str
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    finish_time: _timestamp_pb2.Timestamp
    def __init__(self, sync_id: _Optional[str] = ..., sequence: _Optional[int] = ..., imported: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[ContactSyncFailure, _Mapping]]] = ..., error: _Optional[str] = ..., job_ids: _Optional[_Iterable[str]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReadPersonRequest(_message.Message):
    __slots__ = ("email", "wait_at_most")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    WAIT_AT_MOST_FIELD_NUMBER: _ClassVar[int]
    email: str
    wait_at_most: _duration_pb2.Duration
    def __init__(self, email: _Optional[str] = ..., wait_at_most: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ProviderPersonRead(_message.Message):
    __slots__ = ("email", "provider_id", "profile", "email_marketing", "sms_marketing", "suppressed", "newsletter_member")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_MARKETING_FIELD_NUMBER: _ClassVar[int]
    SMS_MARKETING_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    NEWSLETTER_MEMBER_FIELD_NUMBER: _ClassVar[int]
    email: str
    provider_id: str
    profile: ContactUpserted
    email_marketing: bool
    sms_marketing: bool
    suppressed: bool
    newsletter_member: bool
    def __init__(self, email: _Optional[str] = ..., provider_id: _Optional[str] = ..., profile: _Optional[_Union[ContactUpserted, _Mapping]] = ..., email_marketing: _Optional[bool] = ..., sms_marketing: _Optional[bool] = ..., suppressed: _Optional[bool] = ..., newsletter_member: _Optional[bool] = ...) -> None: ...

class ReadPersonError(_message.Message):
    __slots__ = ("retryable", "message", "retry_after")
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    retryable: bool
    message: str
    retry_after: _duration_pb2.Duration
    def __init__(self, retryable: _Optional[bool] = ..., message: _Optional[str] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ReadPersonReply(_message.Message):
    __slots__ = ("person", "not_found", "error")
    PERSON_FIELD_NUMBER: _ClassVar[int]
    NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    person: ProviderPersonRead
    not_found: bool
    error: ReadPersonError
    def __init__(self, person: _Optional[_Union[ProviderPersonRead, _Mapping]] = ..., not_found: _Optional[bool] = ..., error: _Optional[_Union[ReadPersonError, _Mapping]] = ...) -> None: ...

class Engagement(_message.Message):
    __slots__ = ("provider", "external_id", "type", "email", "phone", "occur_time", "campaign_id", "flow_id", "message_id", "url", "bounce_type", "detail", "provider_type")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    BOUNCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    provider: str
    external_id: str
    type: EngagementType
    email: str
    phone: str
    occur_time: _timestamp_pb2.Timestamp
    campaign_id: str
    flow_id: str
    message_id: str
    url: str
    bounce_type: str
    detail: str
    provider_type: str
    def __init__(self, provider: _Optional[str] = ..., external_id: _Optional[str] = ..., type: _Optional[_Union[EngagementType, str]] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., campaign_id: _Optional[str] = ..., flow_id: _Optional[str] = ..., message_id: _Optional[str] = ..., url: _Optional[str] = ..., bounce_type: _Optional[str] = ..., detail: _Optional[str] = ..., provider_type: _Optional[str] = ...) -> None: ...

class EngagementReceived(_message.Message):
    __slots__ = ("id", "engagements", "receive_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    ENGAGEMENTS_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    engagements: _containers.RepeatedCompositeFieldContainer[Engagement]
    receive_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., engagements: _Optional[_Iterable[_Union[Engagement, _Mapping]]] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProviderCatalogue(_message.Message):
    __slots__ = ("provider", "fetch_time", "campaigns", "flows", "part", "parts")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    FETCH_TIME_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    fetch_time: _timestamp_pb2.Timestamp
    campaigns: _containers.RepeatedCompositeFieldContainer[ProviderCampaign]
    flows: _containers.RepeatedCompositeFieldContainer[ProviderFlowInfo]
    part: int
    parts: int
    def __init__(self, provider: _Optional[str] = ..., fetch_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., campaigns: _Optional[_Iterable[_Union[ProviderCampaign, _Mapping]]] = ..., flows: _Optional[_Iterable[_Union[ProviderFlowInfo, _Mapping]]] = ..., part: _Optional[int] = ..., parts: _Optional[int] = ...) -> None: ...

class ProviderFigures(_message.Message):
    __slots__ = ("source", "timeframe", "statistics")
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
    source: str
    timeframe: str
    statistics: _containers.ScalarMap[str, float]
    def __init__(self, source: _Optional[str] = ..., timeframe: _Optional[str] = ..., statistics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ProviderCampaign(_message.Message):
    __slots__ = ("id", "name", "channel", "status", "provider_status", "send_time", "figures")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    channel: CatalogueChannel
    status: CatalogueStatus
    provider_status: str
    send_time: _timestamp_pb2.Timestamp
    figures: ProviderFigures
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., channel: _Optional[_Union[CatalogueChannel, str]] = ..., status: _Optional[_Union[CatalogueStatus, str]] = ..., provider_status: _Optional[str] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., figures: _Optional[_Union[ProviderFigures, _Mapping]] = ...) -> None: ...

class ProviderFlowInfo(_message.Message):
    __slots__ = ("id", "name", "status", "provider_status", "trigger_type", "figures")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    status: CatalogueStatus
    provider_status: str
    trigger_type: str
    figures: ProviderFigures
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[CatalogueStatus, str]] = ..., provider_status: _Optional[str] = ..., trigger_type: _Optional[str] = ..., figures: _Optional[_Union[ProviderFigures, _Mapping]] = ...) -> None: ...

class TemplatePart(_message.Message):
    __slots__ = ("text", "variable")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    text: str
    variable: TemplateVariable
    def __init__(self, text: _Optional[str] = ..., variable: _Optional[_Union[TemplateVariable, _Mapping]] = ...) -> None: ...

class TemplateVariable(_message.Message):
    __slots__ = ("path", "fallback")
    PATH_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    path: _containers.RepeatedScalarFieldContainer[str]
    fallback: str
    def __init__(self, path: _Optional[_Iterable[str]] = ..., fallback: _Optional[str] = ...) -> None: ...

class CampaignRecipient(_message.Message):
    __slots__ = ("profile", "preferences_url")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_URL_FIELD_NUMBER: _ClassVar[int]
    profile: ContactUpserted
    preferences_url: str
    def __init__(self, profile: _Optional[_Union[ContactUpserted, _Mapping]] = ..., preferences_url: _Optional[str] = ...) -> None: ...

class CampaignAudiencePage(_message.Message):
    __slots__ = ("campaign_id", "part", "sequence", "list_name", "recipients", "list_id", "outbox_sequence", "attempt")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LIST_NAME_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    part: int
    sequence: int
    list_name: str
    recipients: _containers.RepeatedCompositeFieldContainer[CampaignRecipient]
    list_id: str
    outbox_sequence: int
    attempt: int
    def __init__(self, campaign_id: _Optional[str] = ..., part: _Optional[int] = ..., sequence: _Optional[int] = ..., list_name: _Optional[str] = ..., recipients: _Optional[_Iterable[_Union[CampaignRecipient, _Mapping]]] = ..., list_id: _Optional[str] = ..., outbox_sequence: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class CampaignSendRequest(_message.Message):
    __slots__ = ("campaign_id", "part", "name", "list_name", "channel", "subject", "body", "send_time", "from_email", "from_label", "reply_to", "list_id", "attempt")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIST_NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    FROM_EMAIL_FIELD_NUMBER: _ClassVar[int]
    FROM_LABEL_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    part: int
    name: str
    list_name: str
    channel: str
    subject: _containers.RepeatedCompositeFieldContainer[TemplatePart]
    body: _containers.RepeatedCompositeFieldContainer[TemplatePart]
    send_time: _timestamp_pb2.Timestamp
    from_email: str
    from_label: str
    reply_to: str
    list_id: str
    attempt: int
    def __init__(self, campaign_id: _Optional[str] = ..., part: _Optional[int] = ..., name: _Optional[str] = ..., list_name: _Optional[str] = ..., channel: _Optional[str] = ..., subject: _Optional[_Iterable[_Union[TemplatePart, _Mapping]]] = ..., body: _Optional[_Iterable[_Union[TemplatePart, _Mapping]]] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., from_email: _Optional[str] = ..., from_label: _Optional[str] = ..., reply_to: _Optional[str] = ..., list_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class CampaignStepResult(_message.Message):
    __slots__ = ("campaign_id", "part", "sequence", "imported", "failures", "list_id", "provider_campaign_id", "error", "finish_time", "retryable", "attempt")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    LIST_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    part: int
    sequence: int
    imported: int
    failures: _containers.RepeatedCompositeFieldContainer[ContactSyncFailure]
    list_id: str
    provider_campaign_id: str
    error: str
    finish_time: _timestamp_pb2.Timestamp
    retryable: bool
    attempt: int
    def __init__(self, campaign_id: _Optional[str] = ..., part: _Optional[int] = ..., sequence: _Optional[int] = ..., imported: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[ContactSyncFailure, _Mapping]]] = ..., list_id: _Optional[str] = ..., provider_campaign_id: _Optional[str] = ..., error: _Optional[str] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retryable: _Optional[bool] = ..., attempt: _Optional[int] = ...) -> None: ...
