"""Writing outbox rows. Callers pass the session of the transaction that makes
the change, so the change and its outbox row commit (or roll back) together."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.protobuf.message import DecodeError, Message
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.kinds import Kind
from sqlalchemy import delete, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from service.storage.bulk import insert_rows
from service.storage.database import after_commit
from service.storage.models import Outbox, OutboxStatus

log = logging.getLogger(__name__)
# Called after any transaction that added outbox rows commits (the relay's wake-up).
_listeners: list[Callable[[], None]] = []


def on_commit(listener: Callable[[], None]) -> None:
    _listeners.append(listener)


def remove_on_commit(listener: Callable[[], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def notify_after_commit(session: AsyncSession) -> None:
    """Wake the relay once this transaction commits (for rows made PENDING again)."""
    after_commit(session, _notify)


def _notify() -> None:
    for listener in list(_listeners):
        listener()


# What an erased person's rows keep instead of their payload: nothing (it
# parses as an empty message of any kind).
ERASED_PAYLOAD = b""
# The contact_key of a row of many people's work (KIND_ENROLMENTS_BEGUN): no
# person's key, so nothing keyed by a person finds it.
MANY_PEOPLE = ""

# The `kind` of an event's row (the name of KIND_EVENT_TRACKED).
EVENT_TRACKED = kinds.name(bus_pb2.KIND_EVENT_TRACKED)


async def enqueue(
    session: AsyncSession, *, contact_key: str, kind: Kind, payload: Message, now: datetime
) -> None:
    """Queue work of `kind` (what the row asks the dispatcher to do); `payload`
    is the kind's bus message (see bus.proto), kept serialized for the relay
    to publish as it is. The row keeps the kind's name."""
    await enqueue_many(session, [(contact_key, kind, payload.SerializeToString())], now=now)


async def enqueue_many(
    session: AsyncSession,
    rows: Sequence[tuple[str, Kind, bytes]],
    *,
    now: datetime,
    ids: Sequence[uuid.UUID] | None = None,
) -> None:
    """Queue rows of (contact key, kind, the kind's payload message serialized);
    `ids`, when the caller keeps them, are the rows' ids in the same order."""
    if not rows:
        return
    if ids is not None and len(ids) != len(rows):
        raise ValueError("one id per row")
    after_commit(session, _notify)
    row_ids = ids if ids is not None else [uuid.uuid4() for _ in rows]
    await session.execute(
        insert_rows(
            Outbox,
            [
                {
                    "id": row_ids[n],
                    "contact_key": key,
                    "kind": kinds.name(kind),
                    "payload": payload,
                    "created_at": now,
                }
                for n, (key, kind, payload) in enumerate(rows)
            ],
        )
    )


def payload(row_kind: str, data: bytes) -> Any:
    """The typed payload an outbox row of kind `row_kind` (its name) keeps;
    an empty message of that kind for a row whose payload was erased."""
    return kinds.parse_payload(kinds.from_name(row_kind), data)


def event_id(row_kind: str, data: bytes) -> str:
    """The event id of an event's row; "" for a row of another kind, or whose
    payload does not parse."""
    if row_kind != EVENT_TRACKED:
        return ""
    message = _readable_payload(row_kind, data)
    return "" if message is None else str(message.event_id)


def contact_id(row_kind: str, data: bytes) -> str:
    """The contact id a row's payload names (a profile or a consent state);
    "" for a row of a kind without one, whose payload was erased, or whose
    payload does not parse."""
    message = _readable_payload(row_kind, data)
    if message is None:
        return ""
    holder = _contact_id_holder(message)
    return "" if holder is None else str(holder.contact_id)


def _contact_id_holder(message: Any) -> Any | None:
    """The part of a payload that names a contact id (a consent state, or the
    payload itself); None for a kind whose payload names none."""
    if "state" in message.DESCRIPTOR.fields_by_name:
        message = message.state
    return message if "contact_id" in message.DESCRIPTOR.fields_by_name else None


# The names of the kinds whose payloads name a contact id: only their payloads
# are worth reading back for it (a whole profile may be ~100 KiB).
WITH_CONTACT_ID: tuple[str, ...] = tuple(
    kinds.name(kind)
    for kind in kinds.ALL
    if _contact_id_holder(kinds.parse_payload(kind, b"")) is not None
)


def _readable_payload(row_kind: str, data: bytes) -> Any | None:
    """The row's payload, or None for bytes that are not its kind's message:
    the relay fails such a row as unreadable, and the failed-deliveries queue
    must still list and re-drive it (a re-drive fails it again)."""
    try:
        return payload(row_kind, data)
    except DecodeError as exc:
        log.debug("outbox: a %s row's payload does not parse: %s", row_kind, exc)
        return None


async def forget_person(session: AsyncSession, contact_key: str, email: str) -> None:
    """For erasure: work for the person that has not left yet, or that failed,
    is dropped (so nothing re-creates the profile at the provider after the
    erasure); work already on the bus keeps its row for the result, but not
    the person's data. A row of many people's beginnings loses theirs."""
    await session.execute(
        delete(Outbox).where(
            Outbox.contact_key == contact_key,
            Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.FAILED]),
        )
    )
    await session.execute(
        update(Outbox)
        .where(Outbox.contact_key == contact_key, Outbox.payload != ERASED_PAYLOAD)
        .values(payload=ERASED_PAYLOAD)
    )
    await _forget_in_begun(session, email)


# The rows of many people's beginnings that may name the person: their
# partial index (migration 0019) keeps this to those rows (one per batch of
# beginnings, kept while outbox rows are); the payload is then read to be
# sure (an address may be part of another).
_BEGUN_NAMING = text(
    "SELECT id, payload FROM marketing_outbox "
    "WHERE kind = 'enrolments.begun' AND contact_key = '' "
    "AND position(:email IN payload) > 0 FOR UPDATE"
)
_BEGUN_REWRITTEN = text("UPDATE marketing_outbox SET payload = :payload WHERE id = :id")
_BEGUN_EMPTIED = text(
    "DELETE FROM marketing_outbox WHERE id = :id AND status IN ('PENDING', 'FAILED')"
)
assert bus_pb2.EnrolmentsBegun().SerializeToString() == ERASED_PAYLOAD


async def _forget_in_begun(session: AsyncSession, email: str) -> None:
    """Take the person's beginnings out of every KIND_ENROLMENTS_BEGUN row; a
    row left with none is dropped if it has not left yet (or failed), else
    keeps an erased payload for its result."""
    rows = await session.execute(_BEGUN_NAMING, {"email": email.encode()})
    for row_id, data in rows.all():
        message = bus_pb2.EnrolmentsBegun.FromString(data)
        kept = [b for b in message.begun if b.email != email]
        if len(kept) == len(message.begun):
            continue
        del message.begun[:]
        message.begun.extend(kept)
        # No one left: the empty message is ERASED_PAYLOAD itself.
        params = {"id": row_id, "payload": message.SerializeToString()}
        await session.execute(_BEGUN_REWRITTEN, params)
        if not kept:
            await session.execute(_BEGUN_EMPTIED, params)


# Work the bus cannot carry waits FAILED with the dead letters, for review and
# RetryFailedDeliveries; an event's log row says FAILED too (a re-drive makes
# both PENDING again, as for any failed event).
_UNPUBLISHABLE = text(
    "UPDATE marketing_outbox SET status = 'FAILED', completed_at = :now, error = :error "
    "WHERE id = :id AND status = 'PENDING'"
)
_UNPUBLISHABLE_EVENT = text(
    "UPDATE marketing_event_log SET status = 'FAILED', updated_at = :now, error = :error "
    "WHERE id = :event_id AND status IN ('PENDING', 'PROCESSING')"
)


@dataclass(frozen=True)
class Unpublishable:
    """A PENDING row the bus cannot carry, and why."""

    id: Any  # the row's id
    event_id: str | None  # for an event, its event-log id
    error: str


async def fail_unpublishable(
    conn: AsyncConnection, rows: Sequence[Unpublishable], *, now: datetime
) -> None:
    """Dead-letter rows that cannot be published (the caller commits)."""
    if not rows:
        return
    await conn.execute(_UNPUBLISHABLE, [{"id": r.id, "error": r.error, "now": now} for r in rows])
    events = [{"event_id": r.event_id, "error": r.error, "now": now} for r in rows if r.event_id]
    if events:
        await conn.execute(_UNPUBLISHABLE_EVENT, events)


async def prune_completed(session: AsyncSession, *, before: datetime) -> int:
    """Delete finished rows older than `before`; returns how many went."""
    result = await session.execute(
        delete(Outbox).where(Outbox.status == OutboxStatus.COMPLETED, Outbox.completed_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
