"""Protobuf messages in, domain values out, and back. No logic beyond mapping."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from marketing.v1 import common_pb2, consent_pb2, contact_pb2, event_pb2, service_pb2
from marketing_runtime.timestamps import OutOfRange, to_datetime

from service.api.payload_json import TIMESTAMP_RANGE, UnacceptableValue, payload_dict, struct_dict
from service.consent.rules import ConsentInput, consent_name
from service.contacts.rules import ContactFields, ContactView, Money, contact_name
from service.deliveries.outbox import EVENT_TRACKED
from service.deliveries.rules import failed_delivery_name
from service.errors import FieldViolation, InvalidArgumentError
from service.events.rules import EventInput, MoneyField
from service.storage.models import Consent, ConsentType, Outbox

_NANOS = Decimal(1_000_000_000)
_CONSENT_TYPES = {
    ConsentType.EMAIL: consent_pb2.CONSENT_TYPE_EMAIL,
    ConsentType.SMS: consent_pb2.CONSENT_TYPE_SMS,
    ConsentType.PUSH: consent_pb2.CONSENT_TYPE_PUSH,
    ConsentType.MARKETING: consent_pb2.CONSENT_TYPE_MARKETING,
    ConsentType.ANALYTICS: consent_pb2.CONSENT_TYPE_ANALYTICS,
}
_CONSENT_TYPES_BY_PROTO = {proto: domain for domain, proto in _CONSENT_TYPES.items()}


def _bad_timestamp(field: str) -> InvalidArgumentError:
    return InvalidArgumentError([FieldViolation(field, "INVALID_TIMESTAMP", TIMESTAMP_RANGE)])


def when(ts: timestamp_pb2.Timestamp, present: bool, field: str) -> datetime | None:
    """The time, None if absent; INVALID_ARGUMENT naming `field` if out of range."""
    if not present:
        return None
    try:
        return to_datetime(ts)
    except OutOfRange:
        raise _bad_timestamp(field) from None


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def struct_to_dict(value: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """The Struct as a dict; INVALID_ARGUMENT naming a NaN or infinite number in it."""
    try:
        return struct_dict(value, field)
    except UnacceptableValue as bad:
        raise _unacceptable(bad, "") from None


def _unacceptable(bad: UnacceptableValue, prefix: str) -> InvalidArgumentError:
    return InvalidArgumentError([FieldViolation(prefix + bad.path, bad.reason, bad.description)])


def _optional(msg: Message, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def contact_fields(c: contact_pb2.Contact) -> ContactFields:
    money = None
    if c.HasField("lifetime_value"):
        lv = c.lifetime_value
        money = Money(lv.currency_code, lv.units, lv.nanos)
    plain = (
        "user_id",
        "first_name",
        "last_name",
        "phone",
        "loyalty_tier",
        "order_count",
        "location",
        "language",
        "timezone",
    )
    return ContactFields(
        email=c.email,
        registration_time=when(
            c.registration_time, c.HasField("registration_time"), "contact.registration_time"
        ),
        last_purchase_time=when(
            c.last_purchase_time, c.HasField("last_purchase_time"), "contact.last_purchase_time"
        ),
        lifetime_value=money,
        custom_properties=struct_to_dict(c.custom_properties, "contact.custom_properties"),
        **{name: _optional(c, name) for name in plain},
    )


def money_message(amount: Decimal | None, currency: str | None) -> common_pb2.Money | None:
    if amount is None or currency is None:
        return None
    units = int(amount)
    nanos = int((amount - units) * _NANOS)
    return common_pb2.Money(currency_code=currency, units=units, nanos=nanos)


def contact_message(view: ContactView) -> contact_pb2.Contact:
    row = view.contact
    optional_text = (
        "user_id",
        "first_name",
        "last_name",
        "phone",
        "loyalty_tier",
        "location",
        "language",
        "timezone",
    )
    msg = contact_pb2.Contact(
        name=contact_name(row.id),
        email=row.email,
        order_count=row.order_count,
        lifetime_value=money_message(row.lifetime_value, row.lifetime_value_currency),
        registration_time=timestamp(row.registration_time),
        last_purchase_time=timestamp(row.last_purchase_time),
        email_opt_in=row.email_opt_in,
        sms_opt_in=row.sms_opt_in,
        push_opt_in=row.push_opt_in,
        newsletter_member=view.newsletter_member,
        suppressed=view.suppressed,
        external_id=row.external_id or "",
        create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at),
        last_sync_time=timestamp(row.last_sync_at),
        **{name: getattr(row, name) for name in optional_text},
    )
    msg.custom_properties.update(row.custom_properties)
    return msg


def consent_input(c: consent_pb2.Consent) -> ConsentInput:
    return ConsentInput(
        type=_CONSENT_TYPES_BY_PROTO.get(c.type),  # None for UNSPECIFIED or unknown values
        granted=c.granted,
        source=c.source,
        ip_address=c.ip_address,
        user_agent=c.user_agent,
        consent_time=when(c.consent_time, c.HasField("consent_time"), "consent.consent_time"),
    )


def consent_message(row: Consent) -> consent_pb2.Consent:
    return consent_pb2.Consent(
        name=consent_name(row),
        type=_CONSENT_TYPES[row.type],
        granted=row.granted,
        source=row.source,
        ip_address=row.ip_address or "",
        user_agent=row.user_agent or "",
        consent_time=timestamp(row.consent_time),
        record_time=timestamp(row.recorded_at),
    )


def event_input(e: event_pb2.Event, index: int | None = None) -> EventInput:
    """The event of TrackEvent (`index` None) or `events[index]` of TrackEvents."""
    case = e.WhichOneof("payload") or ""
    payload: dict[str, Any] = {}
    money: list[MoneyField] = []
    if case:
        try:
            payload = payload_dict(getattr(e, case), money)
        except UnacceptableValue as bad:
            raise _unacceptable(bad, f"{_event_path(index)}.{case}.") from None
    occur_time = None
    if e.HasField("occur_time"):
        try:
            occur_time = to_datetime(e.occur_time)
        except OutOfRange:
            raise _bad_timestamp(f"{_event_path(index)}.occur_time") from None
    return EventInput(
        type=case,
        email=e.email,
        event_id=e.event_id,
        occur_time=occur_time,
        name=e.custom.name if case == "custom" else "",
        payload=payload,
        money=tuple(money),
    )


def _event_path(index: int | None) -> str:
    return "event" if index is None else f"events[{index}]"


def failed_delivery_message(row: Outbox) -> service_pb2.FailedDelivery:
    is_event = row.kind == EVENT_TRACKED
    return service_pb2.FailedDelivery(
        name=failed_delivery_name(row),
        kind=row.kind,
        event_id=row.payload.get("event_id", "") if is_event else "",
        error=row.error or "",
        attempts=row.attempts,
        retry_count=row.retry_count,
        create_time=timestamp(row.created_at),
        fail_time=timestamp(row.completed_at),
    )
