"""From bus deliveries (provider-neutral payloads) to provider value types."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from dispatcher.providers.base import ConsentChange, ConsentState, Profile, TrackedEvent

_NANOS = Decimal(1_000_000_000)
# Where a typed event keeps the money reported as the event's value.
_VALUE_PATHS = {
    "placed_order": ("order", "total"),
    "cart_abandoned": ("cart", "total"),
}
_PROFILE_IDENTITY = ("email", "user_id", "phone", "first_name", "last_name", "location")


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


def tracked_event(payload: dict[str, Any]) -> TrackedEvent:
    metric = payload["metric"]
    body = payload["properties"]
    custom = body.get("name") == metric  # a CustomEvent payload names itself
    money = _value_money(metric, body, custom)
    properties = body.get("properties", {}) if custom else plain_properties(body)
    return TrackedEvent(
        event_id=payload["event_id"],
        email=payload["email"],
        metric=metric,
        time=datetime.fromisoformat(payload["occur_time"]),
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


def profile(payload: dict[str, Any]) -> Profile:
    properties = {
        key: value
        for key, value in payload.items()
        if key not in (*_PROFILE_IDENTITY, "contact_id", "custom_properties") and value is not None
    }
    if properties.get("lifetime_value") is not None:
        properties["lifetime_value"] = float(Decimal(properties["lifetime_value"]))
    properties.update(payload.get("custom_properties") or {})
    return Profile(
        email=payload["email"],
        external_id=payload.get("user_id"),
        phone=payload.get("phone"),
        first_name=payload.get("first_name"),
        last_name=payload.get("last_name"),
        location=payload.get("location"),
        properties=properties,
    )


def consent_state(payload: dict[str, Any]) -> ConsentState:
    opt_in = payload.get("opt_in", {})
    phone = payload.get("phone")
    change = ConsentChange(
        email=payload["email"],
        phone=phone,
        email_marketing=bool(opt_in.get("email")),
        sms_marketing=bool(opt_in.get("sms")) if phone else None,
    )
    return ConsentState(
        change=change,
        newsletter_member=bool(payload.get("newsletter_member")),
        suppressed=bool(payload.get("suppressed")),
    )
