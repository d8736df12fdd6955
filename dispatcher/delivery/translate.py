"""From bus deliveries (typed, provider-neutral payloads) to provider value
types. Each reader raises ValueError for a delivery of another kind."""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from marketing.bus.v1 import bus_pb2
from marketing_runtime import event_bodies, kinds
from marketing_runtime.money import amount
from marketing_runtime.timestamps import to_datetime

from dispatcher.providers.base import ConsentChange, ConsentState, Profile, TrackedEvent

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
    return {fd.name: _property(fd, value) for fd, value in body.ListFields()}


def _property(fd: FieldDescriptor, value: Any) -> Any:
    if fd.message_type is None:
        return list(value) if fd.is_repeated else value
    if fd.is_repeated:
        return [_message_property(item) for item in value]
    return _message_property(value)


def _message_property(message: Any) -> Any:
    descriptor = message.DESCRIPTOR
    if descriptor is _MONEY:
        return float(amount(message))
    if descriptor is _TIMESTAMP:
        return message.ToJsonString()
    return body_properties(message)


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
    c = delivery.contact_upserted
    value = c.lifetime_value if c.HasField("lifetime_value") else None
    properties = {
        "registration_time": _iso(c, "registration_time"),
        "loyalty_tier": _optional(c, "loyalty_tier"),
        "lifetime_value": None if value is None else float(amount(value)),
        "lifetime_value_currency": None if value is None else value.currency_code or None,
        "order_count": _optional(c, "order_count"),
        "last_purchase_time": _iso(c, "last_purchase_time"),
        "language": _optional(c, "language"),
        "timezone": _optional(c, "timezone"),
    }
    properties = {key: v for key, v in properties.items() if v is not None}
    if c.custom_properties_json:
        properties.update(orjson.loads(c.custom_properties_json))
    return Profile(
        email=c.email,
        external_id=_optional(c, "user_id"),
        phone=_optional(c, "phone"),
        first_name=_optional(c, "first_name"),
        last_name=_optional(c, "last_name"),
        location=_optional(c, "location"),
        properties=properties,
    )


def _optional(message: Message, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


def _iso(message: Message, field: str) -> str | None:
    return to_datetime(getattr(message, field)).isoformat() if message.HasField(field) else None


def erasure_email(delivery: bus_pb2.Delivery) -> str:
    kinds.require(delivery, bus_pb2.KIND_CONTACT_ERASED)
    return delivery.contact_erased.email


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
    state: bus_pb2.ConsentState = getattr(delivery, kinds.payload_field(delivery.type)).state
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
