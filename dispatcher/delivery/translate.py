"""From bus deliveries (typed, provider-neutral payloads) to provider value
types. Each reader raises ValueError for a delivery of another kind."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from marketing.bus.v1 import bus_pb2
from marketing_runtime import event_bodies, kinds
from marketing_runtime.money import amount, to_money
from marketing_runtime.timestamps import to_datetime, to_timestamp

from dispatcher.providers.base import (
    ConsentChange,
    ConsentState,
    EnrolmentChange,
    ListChange,
    Profile,
    PushTokenChange,
    TrackedEvent,
)

# Where a typed event keeps the money reported as the event's value.
_VALUE_PATHS = {
    "placed_order": ("order", "total"),
    "cart_abandoned": ("cart", "total"),
}
_MONEY = bus_pb2.Money.DESCRIPTOR
_TIMESTAMP = timestamp_pb2.Timestamp.DESCRIPTOR


def body_properties(body: Message) -> dict[str, Any]:
    """A typed event body as the provider's properties: its set fields under
    their names, amounts as numbers (what providers chart and sum), times
    in RFC 3339."""
    out = {}
    for fd, value in body.ListFields():
        plan = _PLANS.get(fd) or _plan(fd)
        name, convert, repeated = plan
        if convert is None:
            out[name] = list(value) if repeated else value
        else:
            out[name] = [convert(item) for item in value] if repeated else convert(value)
    return out


# Per field: its name, how its values convert (None: as they are), and
# whether it is repeated. Looked up once per field, not per event: reading a
# descriptor's attributes costs more than the conversion.
_Plan = tuple[str, Callable[[Any], Any] | None, bool]
_PLANS: dict[FieldDescriptor, _Plan] = {}


def _plan(fd: FieldDescriptor) -> _Plan:
    message_type = fd.message_type
    convert: Callable[[Any], Any] | None = None
    if message_type is _MONEY:
        convert = _money_number
    elif message_type is _TIMESTAMP:
        convert = _rfc3339
    elif message_type is not None:
        convert = body_properties
    plan = (fd.name, convert, fd.is_repeated)
    _PLANS[fd] = plan
    return plan


def _money_number(money: bus_pb2.Money) -> float:
    return float(amount(money))


def _rfc3339(time: timestamp_pb2.Timestamp) -> str:
    return time.ToJsonString()


def tracked_event(delivery: bus_pb2.Delivery) -> TrackedEvent:
    kinds.require(delivery, bus_pb2.KIND_EVENT_TRACKED)
    e = delivery.event_tracked
    field = e.WhichOneof("body")
    if field is None:
        raise ValueError(f"event {e.event_id!r} has no body")
    if field == event_bodies.CUSTOM:
        custom = e.custom
        properties = orjson.loads(custom.properties_json) if custom.properties_json else {}
        money = custom.value if custom.HasField("value") else None
    else:
        body = getattr(e, field)
        properties = body_properties(body)
        money = _value_money(field, body)
    return TrackedEvent(
        event_id=e.event_id,
        email=e.email,
        metric=e.metric,
        time=to_datetime(e.occur_time),
        properties=properties,
        value=None if money is None else amount(money),
        value_currency=None if money is None else money.currency_code,
    )


def _value_money(field: str, body: Message) -> bus_pb2.Money | None:
    path = _VALUE_PATHS.get(field)
    if path is None:
        return None
    node: Any = body
    for name in path:
        if not node.HasField(name):
            return None
        node = getattr(node, name)
    return node  # type: ignore[no-any-return]


def profile(delivery: bus_pb2.Delivery) -> Profile:
    kinds.require(delivery, bus_pb2.KIND_CONTACT_UPSERTED)
    return contact_profile(delivery.contact_upserted)


def contact_profile(c: bus_pb2.ContactUpserted) -> Profile:
    """A contact's profile, as ordered work and the full sync carry it. (Each field is
    looked at once: a full sync reads a million of these.)"""
    has = c.HasField
    properties: dict[str, Any] = {}
    if has("registration_time"):
        properties["registration_time"] = _iso(c.registration_time)
    if has("loyalty_tier"):
        properties["loyalty_tier"] = c.loyalty_tier
    if has("lifetime_value"):
        value = c.lifetime_value
        properties["lifetime_value"] = float(amount(value))
        if value.currency_code:
            properties["lifetime_value_currency"] = value.currency_code
    if has("order_count"):
        properties["order_count"] = c.order_count
    if has("last_purchase_time"):
        properties["last_purchase_time"] = _iso(c.last_purchase_time)
    if has("language"):
        properties["language"] = c.language
    if has("timezone"):
        properties["timezone"] = c.timezone
    if c.custom_properties_json:
        properties.update(orjson.loads(c.custom_properties_json))
    return Profile(
        email=c.email,
        external_id=c.user_id if has("user_id") else None,
        phone=c.phone if has("phone") else None,
        first_name=c.first_name if has("first_name") else None,
        last_name=c.last_name if has("last_name") else None,
        location=c.location if has("location") else None,
        properties=properties,
    )


def contact_of(found: Profile) -> bus_pb2.ContactUpserted:
    """The inverse of `profile`: a profile the provider holds, as the ContactUpserted
    fields it was sent from (no contact_id). The properties `profile` derives from
    typed fields go back to them; a value of the wrong type (the provider's, or
    someone else's) stays among the custom properties, where the service sees it."""
    properties = dict(found.properties)
    contact = bus_pb2.ContactUpserted(email=found.email)
    for name in ("user_id", "first_name", "last_name", "phone", "location"):
        value = getattr(found, _PROFILE_FIELDS.get(name, name))
        if value is not None:
            setattr(contact, name, value)
    for name, take in _TYPED_PROPERTIES.items():
        if name in properties and take(contact, properties[name], properties):
            del properties[name]
    if properties:
        contact.custom_properties_json = orjson.dumps(properties)
    return contact


_MAX_UNITS = 2**63
# Profile's names for the ContactUpserted fields named otherwise.
_PROFILE_FIELDS = {"user_id": "external_id"}


def _set_text(name: str) -> Callable[[bus_pb2.ContactUpserted, Any, dict[str, Any]], bool]:
    def take(contact: bus_pb2.ContactUpserted, value: Any, _: dict[str, Any]) -> bool:
        if not isinstance(value, str):
            return False
        setattr(contact, name, value)
        return True

    return take


def _set_time(name: str) -> Callable[[bus_pb2.ContactUpserted, Any, dict[str, Any]], bool]:
    def take(contact: bus_pb2.ContactUpserted, value: Any, _: dict[str, Any]) -> bool:
        try:
            when = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return False
        if when.tzinfo is None:  # the provider's own, without an offset: UTC, as it keeps time
            when = when.replace(tzinfo=UTC)
        getattr(contact, name).CopyFrom(to_timestamp(when))
        return True

    return take


def _set_order_count(contact: bus_pb2.ContactUpserted, value: Any, _: dict[str, Any]) -> bool:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        return False
    contact.order_count = value
    return True


def _set_lifetime_value(
    contact: bus_pb2.ContactUpserted, value: Any, properties: dict[str, Any]
) -> bool:
    """The amount went as a JSON number (`float(amount)`); its shortest text is the
    decimal it was sent from. The currency goes with it when it is text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not math.isfinite(value) or abs(value) >= _MAX_UNITS:  # Money holds int64 units
        return False
    currency = properties.get("lifetime_value_currency")
    if isinstance(currency, str):
        del properties["lifetime_value_currency"]
    else:
        currency = ""
    contact.lifetime_value.CopyFrom(to_money(Decimal(repr(value)), currency))
    return True


# The properties `profile` makes of typed ContactUpserted fields, and how each goes back.
_TYPED_PROPERTIES: dict[str, Callable[[bus_pb2.ContactUpserted, Any, dict[str, Any]], bool]] = {
    "registration_time": _set_time("registration_time"),
    "loyalty_tier": _set_text("loyalty_tier"),
    "lifetime_value": _set_lifetime_value,
    "order_count": _set_order_count,
    "last_purchase_time": _set_time("last_purchase_time"),
    "language": _set_text("language"),
    "timezone": _set_text("timezone"),
}


def _iso(time: timestamp_pb2.Timestamp) -> str:
    return to_datetime(time).isoformat()


def erasure_email(delivery: bus_pb2.Delivery) -> str:
    kinds.require(delivery, bus_pb2.KIND_CONTACT_ERASED)
    return delivery.contact_erased.email


def push_token_change(delivery: bus_pb2.Delivery) -> PushTokenChange:
    kinds.require(delivery, bus_pb2.KIND_PUSH_TOKEN_CHANGED)
    c = delivery.push_token_changed
    phone = c.phone if c.HasField("phone") else None
    return PushTokenChange(c.email, phone, c.token, c.platform, c.vendor, c.registered)


# The kinds whose payload carries a person's whole consent state.
_CONSENT_KINDS = (
    bus_pb2.KIND_CONSENT_CHANGED,
    bus_pb2.KIND_NEWSLETTER_SUBSCRIBED,
    bus_pb2.KIND_CONTACT_UNSUBSCRIBED,
)


def consent_state(delivery: bus_pb2.Delivery) -> ConsentState:
    if delivery.type not in _CONSENT_KINDS:
        raise ValueError(f"a delivery of type {delivery.type} carries no consent state")
    kinds.require(delivery, delivery.type)
    return consent_of(getattr(delivery, kinds.payload_field(delivery.type)).state)


def consent_of(state: bus_pb2.ConsentState) -> ConsentState:
    """A person's whole consent state, as ordered work and the full sync carry it."""
    phone = state.phone if state.HasField("phone") else None
    change = ConsentChange(
        email=state.email,
        phone=phone,
        email_marketing=state.opt_in.email,
        sms_marketing=state.opt_in.sms if phone else None,
    )
    return ConsentState(
        change=change,
        newsletter_member=state.newsletter_member,
        suppressed=state.suppressed,
    )


def list_change(delivery: bus_pb2.Delivery, list_id: str) -> ListChange:
    """A list membership change, into or out of `list_id` (the payload's own id,
    or the one found by the list's name when the payload had none)."""
    kinds.require(delivery, bus_pb2.KIND_LIST_MEMBERSHIP_CHANGED)
    change = delivery.list_membership_changed
    return ListChange(email=change.email, list_id=list_id, member=change.member)


def enrolment_change(delivery: bus_pb2.Delivery) -> EnrolmentChange:
    """An enrolment's beginning or end. ValueError also for one that names no person,
    or whose context is not a JSON object (no provider could ever be sent it)."""
    kinds.require(delivery, bus_pb2.KIND_ENROLMENT_CHANGED)
    return enrolment_of(delivery.enrolment_changed, delivery.create_time)


def enrolment_of(
    change: bus_pb2.EnrolmentChanged,
    created: timestamp_pb2.Timestamp,
    moment: Callable[[timestamp_pb2.Timestamp], datetime] = to_datetime,
) -> EnrolmentChange:
    """One change (alone in its delivery, or one of a KIND_ENROLMENTS_BEGUN's),
    timed by `created` (its delivery's creation) when the service did not time it;
    `moment` converts the time (a message's beginnings share one, converted once)."""
    if not change.email:
        raise ValueError(f"enrolment {change.enrolment_id!r} names no email")
    context = orjson.loads(change.context_json) if change.context_json else {}
    if not isinstance(context, dict):
        raise ValueError(f"enrolment {change.enrolment_id!r}: its context is not a JSON object")
    # A change the service did not time is timed by its delivery's creation.
    decided = change.change_time if change.HasField("change_time") else created
    return EnrolmentChange(
        flow_id=change.flow_id,
        enrolment_id=change.enrolment_id,
        email=change.email,
        active=change.active,
        time=moment(decided),
        exit_reason=change.exit_reason,
        start_metric=change.start_metric,
        exit_metric=change.exit_metric,
        profile_property=change.property,
        automation_id=change.automation_id,
        context=context,
        entry_key=change.entry_key,
        others_active=not change.active and change.others_active,
    )
