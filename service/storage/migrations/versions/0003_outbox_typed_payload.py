"""outbox: each row's payload as its kind's bus message (serialized), not JSON

Rows are converted in batches, paged by id, so a large outbox is neither read
into memory at once nor re-scanned per batch. A row of an erased person keeps
no payload either way: `{"erased": true}` or `{}` before, empty bytes after.

Frozen: both directions are written out here (not taken from the runtime's
legacy decoder), so later changes to the runtime cannot change what this
migration does.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from marketing.bus.v1 import bus_pb2
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
# A test may set a smaller batch in the Alembic config's attributes under this key.
BATCH_ATTRIBUTE = "0003_batch"
_TABLE = "marketing_outbox"
_ERASED_DOCS: tuple[dict[str, Any], ...] = ({"erased": True}, {})
_NANOS = Decimal(1_000_000_000)


def upgrade() -> None:
    op.alter_column(_TABLE, "payload", new_column_name="payload_json")
    op.add_column(_TABLE, sa.Column("payload", sa.LargeBinary(), nullable=True))
    _convert("payload_json", "payload", _typed)
    op.alter_column(_TABLE, "payload", nullable=False)
    op.drop_column(_TABLE, "payload_json")


def downgrade() -> None:
    op.alter_column(_TABLE, "payload", new_column_name="payload_typed")
    op.add_column(_TABLE, sa.Column("payload", postgresql.JSONB(), nullable=True))
    _convert("payload_typed", "payload", _json)
    op.alter_column(_TABLE, "payload", nullable=False)
    op.drop_column(_TABLE, "payload_typed")


def _convert(source: str, target: str, convert: Callable[[str, Any], Any]) -> None:
    """Fill `target` from `source` for every row, a batch a statement."""
    conn = op.get_bind()
    select = sa.text(
        f"SELECT id, kind, {source} AS value FROM {_TABLE} "
        "WHERE CAST(:last AS uuid) IS NULL OR id > CAST(:last AS uuid) ORDER BY id LIMIT :n"
    )
    update = sa.text(f"UPDATE {_TABLE} SET {target} = :value WHERE id = :id")
    for rows in _batches(conn, select, _batch_size()):
        conn.execute(update, [{"id": r.id, "value": convert(r.kind, r.value)} for r in rows])


def _batch_size() -> int:
    config = op.get_context().config
    return int(config.attributes.get(BATCH_ATTRIBUTE, BATCH)) if config is not None else BATCH


def _batches(conn: Any, select: Any, size: int) -> Iterator[Sequence[Any]]:
    """The rows in id order, `size` at a time: each batch starts after the
    last id of the one before (the primary key's index finds it)."""
    last = None
    while rows := conn.execute(select, {"last": last, "n": size}).all():
        yield rows
        last = rows[-1].id


def _typed(kind: str, doc: Any) -> bytes:
    if doc in _ERASED_DOCS:
        return b""
    try:
        return bytes(_DECODERS[kind](doc).SerializeToString())
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        # Converting it to nothing would lose work: the deployment stops here.
        raise RuntimeError(f"outbox row of kind {kind!r} is unreadable: {exc!r}") from exc


# The typed payload of each kind from the JSON form the releases before this
# one wrote (KeyError, ValueError or TypeError for a document not of it).

# The typed event bodies there were: each one's metric names its body's field.
_TYPED_BODIES: Mapping[str, type[Message]] = {
    "product_viewed": bus_pb2.ProductViewed,
    "added_to_cart": bus_pb2.AddedToCart,
    "placed_order": bus_pb2.PlacedOrder,
    "cart_abandoned": bus_pb2.CartAbandoned,
}


def _time(iso: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(iso).astimezone(UTC))  # naive: local time
    return stamp


def _event_tracked_from(doc: Mapping[str, Any]) -> bus_pb2.EventTracked:
    event = bus_pb2.EventTracked(
        event_id=doc["event_id"],
        email=doc["email"],
        metric=doc["metric"],
        occur_time=_time(doc["occur_time"]),
    )
    body = doc.get("properties") or {}
    if not isinstance(body, dict):
        raise TypeError(f"an event body is a JSON object, not {type(body).__name__}")
    try:
        _set_body(event, body)
    except json_format.ParseError as exc:
        raise ValueError(f"not a {event.metric} body: {exc}") from None
    return event


def _set_body(event: bus_pb2.EventTracked, body: dict[str, Any]) -> None:
    typed = _TYPED_BODIES.get(event.metric)
    if typed is not None:
        getattr(event, event.metric).CopyFrom(json_format.ParseDict(body, typed()))
        return
    event.custom.name = body.get("name", event.metric)
    if "properties" in body:
        event.custom.properties_json = orjson.dumps(body["properties"])
    if "value" in body:
        json_format.ParseDict(body["value"], event.custom.value)


def _contact_upserted_from(doc: Mapping[str, Any]) -> bus_pb2.ContactUpserted:
    message = bus_pb2.ContactUpserted(
        contact_id=doc.get("contact_id") or "",
        email=doc["email"],
        custom_properties_json=orjson.dumps(doc.get("custom_properties") or {}),
        **{key: doc[key] for key in _CONTACT_TEXT if doc.get(key) is not None},
    )
    if doc.get("order_count") is not None:
        message.order_count = doc["order_count"]
    for key in ("registration_time", "last_purchase_time"):
        if doc.get(key) is not None:
            getattr(message, key).CopyFrom(_time(doc[key]))
    if doc.get("lifetime_value") is not None:
        value = Decimal(doc["lifetime_value"])
        units = int(value)
        message.lifetime_value.CopyFrom(
            bus_pb2.Money(
                currency_code=doc.get("lifetime_value_currency") or "",
                units=units,
                nanos=int((value - units) * _NANOS),
            )
        )
    return message


def _consent_state_from(doc: Mapping[str, Any]) -> bus_pb2.ConsentState:
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


def _contact_unsubscribed_from(doc: Mapping[str, Any]) -> bus_pb2.ContactUnsubscribed:
    message = bus_pb2.ContactUnsubscribed(state=_consent_state_from(doc))
    if doc.get("reason") is not None:
        message.reason = doc["reason"]
    return message


def _contact_erased_from(doc: Mapping[str, Any]) -> bus_pb2.ContactErased:
    message = bus_pb2.ContactErased(email=doc["email"])
    if doc.get("external_id") is not None:
        message.external_id = doc["external_id"]
    return message


_DECODERS: Mapping[str, Callable[[Mapping[str, Any]], Message]] = {
    "event.tracked": _event_tracked_from,
    "contact.upserted": _contact_upserted_from,
    "consent.changed": lambda d: bus_pb2.ConsentChanged(state=_consent_state_from(d)),
    "newsletter.subscribed": lambda d: bus_pb2.NewsletterSubscribed(state=_consent_state_from(d)),
    "contact.unsubscribed": _contact_unsubscribed_from,
    "contact.erased": _contact_erased_from,
}


# The JSON form of each kind, as the releases before this one wrote it.


def _json(kind: str, data: bytes) -> str:
    if not data:
        return '{"erased": true}'
    message_class, writer = _WRITERS[kind]
    message = message_class()
    message.ParseFromString(data)
    return orjson.dumps(writer(message)).decode()


def _iso(message: Any, field: str) -> str | None:
    return _iso_time(getattr(message, field)) if message.HasField(field) else None


def _iso_time(stamp: Timestamp) -> str:
    return stamp.ToDatetime(tzinfo=UTC).isoformat()


def _optional(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


def _money(m: bus_pb2.Money) -> dict[str, Any]:
    return {
        key: value
        for key, value in (
            ("currency_code", m.currency_code),
            ("units", m.units),
            ("nanos", m.nanos),
        )
        if value
    }


def _event_tracked(e: bus_pb2.EventTracked) -> dict[str, Any]:
    field = e.WhichOneof("body")
    if field == "custom":
        body: dict[str, Any] = {"name": e.custom.name} if e.custom.name else {}
        if e.custom.properties_json:
            body["properties"] = orjson.loads(e.custom.properties_json)
        if e.custom.HasField("value"):
            body["value"] = _money(e.custom.value)
    else:
        body = _with_int_units(
            json_format.MessageToDict(getattr(e, field), preserving_proto_field_name=True)
        )
    return {
        "event_id": e.event_id,
        "metric": e.metric,
        "email": e.email,
        "occur_time": _iso_time(e.occur_time),
        "properties": body,
    }


def _with_int_units(value: Any) -> Any:
    """MessageToDict writes int64 as strings; the amounts were numbers."""
    if isinstance(value, dict):
        return {k: int(v) if k == "units" else _with_int_units(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_int_units(v) for v in value]
    return value


_CONTACT_TEXT = (
    "user_id",
    "first_name",
    "last_name",
    "phone",
    "loyalty_tier",
    "location",
    "language",
    "timezone",
)


def _contact_upserted(c: bus_pb2.ContactUpserted) -> dict[str, Any]:
    value = c.lifetime_value if c.HasField("lifetime_value") else None
    return {
        "contact_id": c.contact_id,
        "email": c.email,
        **{name: _optional(c, name) for name in _CONTACT_TEXT},
        "registration_time": _iso(c, "registration_time"),
        "lifetime_value": None
        if value is None
        else str(Decimal(value.units) + Decimal(value.nanos) / _NANOS),
        "lifetime_value_currency": None if value is None else value.currency_code or None,
        "order_count": _optional(c, "order_count"),
        "last_purchase_time": _iso(c, "last_purchase_time"),
        "custom_properties": orjson.loads(c.custom_properties_json or b"{}"),
    }


def _consent_state(s: bus_pb2.ConsentState) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "email": s.email,
        "opt_in": {"email": s.opt_in.email, "sms": s.opt_in.sms, "push": s.opt_in.push},
        "newsletter_member": s.newsletter_member,
        "suppressed": s.suppressed,
    }
    if s.contact_id:  # an address without a contact had none of these
        doc |= {
            "contact_id": s.contact_id,
            "phone": _optional(s, "phone"),
            "records": [
                {
                    "type": bus_pb2.ConsentType.Name(r.type).removeprefix("CONSENT_TYPE_"),
                    "granted": r.granted,
                    "source": r.source,
                    "consent_time": _iso_time(r.consent_time),
                }
                for r in s.records
            ],
        }
    return doc


def _contact_unsubscribed(u: bus_pb2.ContactUnsubscribed) -> dict[str, Any]:
    return _consent_state(u.state) | {"reason": _optional(u, "reason")}


_WRITERS: Mapping[str, tuple[type[Message], Callable[[Any], dict[str, Any]]]] = {
    "event.tracked": (bus_pb2.EventTracked, _event_tracked),
    "contact.upserted": (bus_pb2.ContactUpserted, _contact_upserted),
    "consent.changed": (bus_pb2.ConsentChanged, lambda m: _consent_state(m.state)),
    "newsletter.subscribed": (bus_pb2.NewsletterSubscribed, lambda m: _consent_state(m.state)),
    "contact.unsubscribed": (bus_pb2.ContactUnsubscribed, _contact_unsubscribed),
    "contact.erased": (
        bus_pb2.ContactErased,
        lambda m: {"email": m.email, "external_id": _optional(m, "external_id")},
    ),
}
