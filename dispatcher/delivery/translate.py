"""From bus deliveries (typed, provider-neutral payloads) to provider value
types. Each reader raises ValueError for a delivery of another kind."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from google.protobuf.message import Message
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.timestamps import to_datetime

from dispatcher.providers.base import ConsentChange, ConsentState, Profile, TrackedEvent

_NANOS = Decimal(1_000_000_000)
# Where a typed event keeps the money reported as the event's value.
_VALUE_PATHS = {
    "placed_order": ("order", "total"),
    "cart_abandoned": ("cart", "total"),
}


def money_amount(money: dict[str, Any]) -> Decimal:
    return Decimal(str(money.get("units", "0"))) + Decimal(money.get("nanos", 0)) / _NANOS


_MONEY_KEYS = frozenset({"currency_code", "units", "nanos"})


def _is_money(value: Any) -> bool:
    return isinstance(value, dict) and "currency_code" in value and value.keys() <= _MONEY_KEYS


def plain_properties(value: Any) -> Any:
    """Money objects become numbers, which is what providers chart and sum."""
    if isinstance(value, dict):
        if "currency_code" in value and value.keys() <= _MONEY_KEYS:
            return float(money_amount(value))
        return {k: plain_properties(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_properties(v) for v in value]
    return value


def tracked_event(delivery: bus_pb2.Delivery) -> TrackedEvent:
    kinds.require(delivery, bus_pb2.KIND_EVENT_TRACKED)
    e = delivery.event_tracked
    metric = e.metric
    body = orjson.loads(e.properties_json)
    if not isinstance(body, dict):
        raise TypeError(f"event properties are a JSON {type(body).__name__}, not an object")
    custom = body.get("name") == metric  # a CustomEvent payload names itself
    money = _value_money(metric, body, custom)
    properties = body.get("properties", {}) if custom else plain_properties(body)
    return TrackedEvent(
        event_id=e.event_id,
        email=e.email,
        metric=metric,
        time=to_datetime(e.occur_time),
        properties=properties,
        value=None if money is None else money_amount(money),
        value_currency=None if money is None else money["currency_code"],
    )


def _value_money(metric: str, body: dict[str, Any], custom: bool) -> dict[str, Any] | None:
    if custom:
        value = body.get("value")
        return value if _is_money(value) else None
    node: Any = body
    for key in _VALUE_PATHS.get(metric, ()):
        node = node.get(key) if isinstance(node, dict) else None
    return node if metric in _VALUE_PATHS and _is_money(node) else None


def profile(delivery: bus_pb2.Delivery) -> Profile:
    kinds.require(delivery, bus_pb2.KIND_CONTACT_UPSERTED)
    c = delivery.contact_upserted
    value = c.lifetime_value if c.HasField("lifetime_value") else None
    properties = {
        "registration_time": _iso(c, "registration_time"),
        "loyalty_tier": _optional(c, "loyalty_tier"),
        "lifetime_value": None if value is None else float(_amount(value)),
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


def _amount(money: bus_pb2.Money) -> Decimal:
    return Decimal(money.units) + Decimal(money.nanos) / _NANOS


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
