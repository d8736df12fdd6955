"""The one legacy decoder: bus messages written by the releases before the
typed bus contract (a `kind` string and `payload_json`), in their typed form.

Messages already on the streams when a new release starts were written by the
old one; `marketing_runtime.envelope` passes every Delivery and DeliveryResult
it parses through here, so no reader sees the old fields. Outbox rows of
those releases kept their payloads in the same JSON form; the migration that
made them typed (0003) decodes them with a frozen copy of `payload_from_json`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from marketing.bus.v1 import bus_pb2

from marketing_runtime import event_bodies
from marketing_runtime.kinds import CONTACT_TEXT_FIELDS, Kind, payload_field
from marketing_runtime.money import to_money
from marketing_runtime.timestamps import to_timestamp

__all__ = ["KINDS", "payload_from_json", "upgrade_delivery", "upgrade_result"]

# The kind strings those releases wrote, as they wrote them: frozen, whatever
# the Kind values are called later.
KINDS: Mapping[str, Kind] = {
    "event.tracked": bus_pb2.KIND_EVENT_TRACKED,
    "contact.upserted": bus_pb2.KIND_CONTACT_UPSERTED,
    "consent.changed": bus_pb2.KIND_CONSENT_CHANGED,
    "newsletter.subscribed": bus_pb2.KIND_NEWSLETTER_SUBSCRIBED,
    "contact.unsubscribed": bus_pb2.KIND_CONTACT_UNSUBSCRIBED,
    "contact.erased": bus_pb2.KIND_CONTACT_ERASED,
}


def upgrade_delivery(delivery: bus_pb2.Delivery) -> bus_pb2.Delivery:
    """A Delivery with a `type` as it is; an old one turned typed in place. An
    old one of an unknown kind, or whose payload cannot be read, is left
    without a type (readers refuse it as unreadable)."""
    if delivery.type != bus_pb2.KIND_UNSPECIFIED or not delivery.kind:
        return delivery
    kind = KINDS.get(delivery.kind)
    if kind is None:
        return delivery
    try:
        payload = payload_from_json(kind, orjson.loads(delivery.payload_json))
    except (KeyError, ValueError, TypeError, AttributeError):
        return delivery
    getattr(delivery, payload_field(kind)).CopyFrom(payload)
    delivery.type = kind
    delivery.ClearField("kind")
    delivery.ClearField("payload_json")
    return delivery


def _set_body(event: bus_pb2.EventTracked, doc: Any) -> None:
    if not isinstance(doc, dict):
        raise TypeError(f"an event body is a JSON object, not {type(doc).__name__}")
    field, body = event_bodies.from_json(event.metric, doc)
    getattr(event, field).CopyFrom(body)


def upgrade_result(result: bus_pb2.DeliveryResult) -> bus_pb2.DeliveryResult:
    """A DeliveryResult with a `type` as it is; an old one given its type in place."""
    if result.type == bus_pb2.KIND_UNSPECIFIED and result.kind in KINDS:
        result.type = KINDS[result.kind]
        result.ClearField("kind")
    return result


def payload_from_json(kind: Kind, doc: Mapping[str, Any]) -> Any:
    """The typed payload of `kind` from its JSON form (a decoded object);
    KeyError, ValueError or TypeError when `doc` is not of that form."""
    return _DECODERS[kind](doc)


def _event_tracked(doc: Mapping[str, Any]) -> bus_pb2.EventTracked:
    event = bus_pb2.EventTracked(
        event_id=doc["event_id"],
        email=doc["email"],
        metric=doc["metric"],
        occur_time=_time(doc["occur_time"]),
    )
    _set_body(event, doc.get("properties") or {})
    return event


def _contact_upserted(doc: Mapping[str, Any]) -> bus_pb2.ContactUpserted:
    message = bus_pb2.ContactUpserted(
        contact_id=doc.get("contact_id") or "",
        email=doc["email"],
        custom_properties_json=orjson.dumps(doc.get("custom_properties") or {}),
        **{key: doc[key] for key in CONTACT_TEXT_FIELDS if doc.get(key) is not None},
    )
    if doc.get("order_count") is not None:
        message.order_count = doc["order_count"]
    for key in ("registration_time", "last_purchase_time"):
        if doc.get(key) is not None:
            getattr(message, key).CopyFrom(_time(doc[key]))
    if doc.get("lifetime_value") is not None:
        message.lifetime_value.CopyFrom(
            to_money(Decimal(doc["lifetime_value"]), doc.get("lifetime_value_currency") or "")
        )
    return message


def _consent_state(doc: Mapping[str, Any]) -> bus_pb2.ConsentState:
    opt_in = doc.get("opt_in") or {}
    state = bus_pb2.ConsentState(
        contact_id=doc.get("contact_id") or "",
        email=doc["email"],
        opt_in=bus_pb2.OptIn(
            email=bool(opt_in.get("email")),
            sms=bool(opt_in.get("sms")),
            push=bool(opt_in.get("push")),
        ),
        newsletter_member=bool(doc.get("newsletter_member")),
        suppressed=bool(doc.get("suppressed")),
        records=[
            bus_pb2.ConsentRecord(
                type=f"CONSENT_TYPE_{r['type']}",  # a name protobuf checks
                granted=r["granted"],
                source=r["source"],
                consent_time=_time(r["consent_time"]),
            )
            for r in doc.get("records") or ()
        ],
    )
    if doc.get("phone") is not None:
        state.phone = doc["phone"]
    return state


def _contact_unsubscribed(doc: Mapping[str, Any]) -> bus_pb2.ContactUnsubscribed:
    message = bus_pb2.ContactUnsubscribed(state=_consent_state(doc))
    if doc.get("reason") is not None:
        message.reason = doc["reason"]
    return message


def _contact_erased(doc: Mapping[str, Any]) -> bus_pb2.ContactErased:
    message = bus_pb2.ContactErased(email=doc["email"])
    if doc.get("external_id") is not None:
        message.external_id = doc["external_id"]
    return message


def _time(iso: str) -> Any:
    return to_timestamp(datetime.fromisoformat(iso))


_DECODERS: dict[Kind, Callable[[Mapping[str, Any]], Any]] = {
    bus_pb2.KIND_EVENT_TRACKED: _event_tracked,
    bus_pb2.KIND_CONTACT_UPSERTED: _contact_upserted,
    bus_pb2.KIND_CONSENT_CHANGED: lambda d: bus_pb2.ConsentChanged(state=_consent_state(d)),
    bus_pb2.KIND_NEWSLETTER_SUBSCRIBED: lambda d: bus_pb2.NewsletterSubscribed(
        state=_consent_state(d)
    ),
    bus_pb2.KIND_CONTACT_UNSUBSCRIBED: _contact_unsubscribed,
    bus_pb2.KIND_CONTACT_ERASED: _contact_erased,
}
