"""Writing the event log: by the RPC when the bus is unreachable (with an outbox
row), and by the service's event-log writer when events came over the bus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.deliveries import outbox
from service.deliveries.outbox import OutboxKind
from service.storage.database import Database


@dataclass(slots=True)  # not frozen: one is made per event ingested, at half the cost
class EventRecord:
    """An accepted event, as stored and as carried on the bus."""

    event_id: str
    email: str  # normalised
    contact_key: str
    metric: str
    payload: dict[str, Any]
    occurred_at: datetime
    payload_json: bytes = b""  # `payload` as JSON, when the caller has it already

    def delivery_payload(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "metric": self.metric,
            "email": self.email,
            "occur_time": self.occurred_at.isoformat(),
            "properties": self.payload,
        }

    def delivery_json(self) -> bytes:
        """`delivery_payload()` as JSON, reusing the encoded payload (the fast
        path encodes thousands of these a second)."""
        if not self.payload_json:
            return orjson.dumps(self.delivery_payload())
        head = self.delivery_payload()
        del head["properties"]
        return b"".join((orjson.dumps(head)[:-1], b',"properties":', self.payload_json, b"}"))


MAX_RETRIES = 6  # the seed's schedule: 1, 2, 4, 8, 16, 32 s

# One statement for a whole batch, whatever its size: the bus payloads go in as
# they came (JSON) and PostgreSQL takes them apart, contacts linked by a join, so
# Python decodes and re-encodes nothing. (A multi-row VALUES statement per batch
# once cost more CPU than the rest of the event-log writer together.) The array
# is bound as jsonb[], so each document is parsed once, when bound: a text cast
# in the query was inlined into every `doc->` and parsed six times a row, which
# tripled the statement's run time. Events whose person was erased after they
# were accepted (late over the bus) are left out.
_INSERT_LOG_ROWS_SQL = """
    INSERT INTO marketing_event_log (id, contact_id, contact_key, type, data, occurred_at,
                                     status, retry_count, max_retries, created_at, updated_at)
    SELECT u.doc->>'event_id', c.id, u.contact_key, u.doc->>'metric',
           jsonb_build_object('email', u.doc->'email', 'payload', u.doc->'properties'),
           CAST(u.doc->>'occur_time' AS timestamptz), 'PENDING', 0, :max_retries, :now, :now
    FROM unnest(CAST(:keys AS text[]), CAST(:docs AS jsonb[]), CAST(:accepted AS bigint[]))
         AS u(contact_key, doc, accepted_us)
    LEFT JOIN marketing_contact c ON c.email = u.doc->>'email'
    WHERE NOT EXISTS (
        SELECT 1 FROM marketing_erasure_log e
        WHERE e.email_sha256 = u.contact_key
          AND e.erased_at >= TIMESTAMPTZ 'epoch' + u.accepted_us * INTERVAL '1 microsecond'
    )
    ON CONFLICT (id) DO NOTHING
"""
_INSERT_LOG_ROWS = text(_INSERT_LOG_ROWS_SQL)
_INSERT_LOG_ROWS_RETURNING = text(_INSERT_LOG_ROWS_SQL + "RETURNING id")


@dataclass(frozen=True, slots=True)
class LogEvent:
    """An event to log, in its bus form: the Delivery's key, payload and time."""

    contact_key: str
    payload_json: str  # EventRecord.delivery_json()
    # When the service accepted it, microseconds since the epoch; None when it
    # is accepted in this very transaction (no erasure can have come after).
    accepted_us: int | None


async def insert_log_rows(
    session: AsyncSession, events: list[LogEvent], now: datetime, *, report_new: bool = True
) -> set[str]:
    """Event-log rows linked to known contacts; returns the ids that were new
    (a known id is left as it is), or nothing when not `report_new` (the
    event-log writer needs no answer: reading back a thousand ids costs it)."""
    if not events:
        return set()
    params = {
        "keys": [e.contact_key for e in events],
        "docs": [e.payload_json for e in events],
        "accepted": [e.accepted_us for e in events],
        "max_retries": MAX_RETRIES,
        "now": now,
    }
    if not report_new:
        await session.execute(_INSERT_LOG_ROWS, params)
        return set()
    return set(await session.scalars(_INSERT_LOG_ROWS_RETURNING, params))


class PostgresEventSink:
    """Events accepted straight into PostgreSQL: event log and outbox row commit
    together, and the relay publishes them when the bus is reachable."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def accept(self, records: list[EventRecord], now: datetime) -> set[str]:
        async with self._db.transaction() as session:
            fresh = [LogEvent(r.contact_key, r.delivery_json().decode(), None) for r in records]
            inserted = await insert_log_rows(session, fresh, now)
            await outbox.enqueue_many(
                session,
                [
                    (r.contact_key, OutboxKind.EVENT_TRACKED, r.delivery_payload())
                    for r in records
                    if r.event_id in inserted
                ],
                now=now,
            )
        return inserted
