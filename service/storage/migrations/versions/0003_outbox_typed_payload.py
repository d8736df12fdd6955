"""outbox: each row's payload as its kind's bus message (serialized), not JSON

Rows are converted in batches by the legacy decoder (marketing_runtime.legacy),
so a large outbox is not read into memory at once. A row of an erased person
keeps no payload either way: `{"erased": true}` or `{}` before, empty bytes
after.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op
from google.protobuf import json_format
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.legacy import KINDS, payload_from_json
from marketing_runtime.money import amount
from marketing_runtime.timestamps import to_datetime
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
_TABLE = "marketing_outbox"
_ERASED_DOCS: tuple[dict[str, Any], ...] = ({"erased": True}, {})


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
    """Fill `target` from `source` for every row, BATCH rows a statement."""
    conn = op.get_bind()
    select = sa.text(
        f"SELECT id, kind, {source} AS value FROM {_TABLE} WHERE {target} IS NULL LIMIT :n"
    )
    update = sa.text(f"UPDATE {_TABLE} SET {target} = :value WHERE id = :id")
    for rows in _batches(conn, select):
        conn.execute(update, [{"id": r.id, "value": convert(r.kind, r.value)} for r in rows])


def _batches(conn: Any, select: Any) -> Iterator[Sequence[Any]]:
    while rows := conn.execute(select, {"n": BATCH}).all():
        yield rows


def _typed(kind: str, doc: Any) -> bytes:
    if doc in _ERASED_DOCS:
        return b""
    try:
        return bytes(payload_from_json(KINDS[kind], doc).SerializeToString())
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        # Converting it to nothing would lose work: the deployment stops here.
        raise RuntimeError(f"outbox row of kind {kind!r} is unreadable: {exc!r}") from exc


# The JSON form of each kind, as the releases before this one wrote it.


def _json(kind: str, data: bytes) -> str:
    if not data:
        return '{"erased": true}'
    message = kinds.parse_payload(kinds.from_name(kind), data)
    writer = _WRITERS[kinds.from_name(kind)]
    return orjson.dumps(writer(message)).decode()


def _iso(message: Any, field: str) -> str | None:
    return to_datetime(getattr(message, field)).isoformat() if message.HasField(field) else None


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
        "occur_time": to_datetime(e.occur_time).isoformat(),
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
        "lifetime_value": None if value is None else str(amount(value)),
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
                    "consent_time": to_datetime(r.consent_time).isoformat(),
                }
                for r in s.records
            ],
        }
    return doc


def _contact_unsubscribed(u: bus_pb2.ContactUnsubscribed) -> dict[str, Any]:
    return _consent_state(u.state) | {"reason": _optional(u, "reason")}


_WRITERS: dict[Any, Callable[[Any], dict[str, Any]]] = {
    bus_pb2.KIND_EVENT_TRACKED: _event_tracked,
    bus_pb2.KIND_CONTACT_UPSERTED: _contact_upserted,
    bus_pb2.KIND_CONSENT_CHANGED: lambda m: _consent_state(m.state),
    bus_pb2.KIND_NEWSLETTER_SUBSCRIBED: lambda m: _consent_state(m.state),
    bus_pb2.KIND_CONTACT_UNSUBSCRIBED: _contact_unsubscribed,
    bus_pb2.KIND_CONTACT_ERASED: lambda m: {
        "email": m.email,
        "external_id": _optional(m, "external_id"),
    },
}
