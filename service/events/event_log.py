"""Writing the event log: by the RPC when the bus is unreachable (with an outbox
row), and by the service's event-log writer when events came over the bus."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import orjson
from marketing.bus.v1 import bus_pb2
from marketing_runtime.envelope import TrackedEvent
from marketing_runtime.event_bodies import set_body
from marketing_runtime.timestamps import EPOCH, epoch_micros, to_timestamp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.deliveries import outbox
from service.flows import triggers as flow_triggers
from service.segments import membership
from service.storage.database import Database


@dataclass(slots=True)  # not frozen: one is made per event ingested, at half the cost
class EventRecord:
    """An accepted event, as stored and as carried on the bus."""

    event_id: str
    email: str  # normalised
    contact_key: str
    metric: str
    payload: dict[str, Any]  # the body as the event log keeps it (JSON)
    occurred_at: datetime
    payload_json: bytes = b""  # `payload` as JSON, when the caller has it already
    body_field: str = ""  # the bus body's field (see bus_body)
    body: bytes = b""  # the bus body, serialized

    def bus_event(self) -> TrackedEvent:
        """The event as the bus carries it, reusing the encoded body (the fast
        path encodes thousands of these a second)."""
        return TrackedEvent(
            self.event_id,
            self.contact_key,
            self.email,
            self.metric,
            epoch_micros(self.occurred_at),
            self.body_field,
            self.body,
        )

    def bus_message(self) -> bus_pb2.EventTracked:
        """The event as an outbox row keeps it."""
        event = bus_pb2.EventTracked(
            event_id=self.event_id,
            email=self.email,
            metric=self.metric,
            occur_time=to_timestamp(self.occurred_at),
        )
        set_body(event, self.body_field, self.body)
        return event

    def log_event(self) -> LogEvent:
        """The event's log row, accepted in this very transaction."""
        return LogEvent(
            self.event_id,
            self.contact_key,
            self.email,
            self.metric,
            epoch_micros(self.occurred_at),
            self.payload_json or orjson.dumps(self.payload),
            None,
        )


MAX_RETRIES = 6  # the seed's schedule: 1, 2, 4, 8, 16, 32 s

# One statement for a whole batch, whatever its size: the events go in as
# arrays, the properties as the JSON they came in, contacts linked by a join, so
# Python decodes and re-encodes nothing. (A multi-row VALUES statement per batch
# once cost more CPU than the rest of the event-log writer together.) The
# properties are bound as jsonb[], so each document is parsed once, when bound.
# Events whose person was erased after they were accepted (late over the bus)
# are left out.
_INSERT_LOG_ROWS_SQL = """
    INSERT INTO marketing_event_log (id, contact_id, contact_key, type, data, occurred_at,
                                     status, retry_count, max_retries, created_at, updated_at)
    SELECT u.id, c.id, u.contact_key, u.metric,
           jsonb_build_object('email', u.email, 'payload', u.properties),
           TIMESTAMPTZ 'epoch' + u.occurred_us * INTERVAL '1 microsecond',
           'PENDING', 0, :max_retries, :now, :now
    FROM unnest(CAST(:ids AS text[]), CAST(:keys AS text[]), CAST(:emails AS text[]),
                CAST(:metrics AS text[]), CAST(:occurred AS bigint[]),
                CAST(:properties AS jsonb[]), CAST(:accepted AS bigint[]))
         AS u(id, contact_key, email, metric, occurred_us, properties, accepted_us)
    LEFT JOIN marketing_contact c ON c.email = u.email
    WHERE NOT EXISTS (
        SELECT 1 FROM marketing_erasure_log e
        WHERE e.email_sha256 = u.contact_key
          AND e.erased_at >= TIMESTAMPTZ 'epoch' + u.accepted_us * INTERVAL '1 microsecond'
    )
    ON CONFLICT (id) DO NOTHING
"""
# The ids of the rows inserted whose type is one of :wanted (every type when
# NULL): the events new to the log that flows or timers care about. Reading
# back only those keeps the event-log writer's batches cheap (reading back
# every id of a thousand-event batch costs it).
_INSERT_LOG_ROWS = text(
    "WITH inserted AS (" + _INSERT_LOG_ROWS_SQL + "RETURNING id, type) SELECT id FROM inserted"
    " WHERE CAST(:wanted AS text[]) IS NULL OR type = ANY(CAST(:wanted AS text[]))"
)


class LogEvent(NamedTuple):
    """An event to log (a tuple: the event-log writer makes one per event)."""

    event_id: str
    contact_key: str
    email: str
    metric: str
    occurred_us: int  # microseconds since the epoch
    payload_json: bytes  # the body's JSON document (see bus_body.log_json)
    # When the service accepted it, microseconds since the epoch; None when it
    # is accepted in this very transaction (no erasure can have come after).
    accepted_us: int | None


async def insert_log_rows(
    session: AsyncSession, events: list[LogEvent], now: datetime, *, report_new: bool = True
) -> set[str]:
    """Event-log rows linked to known contacts; returns the ids that were new
    (a known id is left as it is), or nothing when not `report_new` (the
    event-log writer needs no answer). The events new to the log set off the
    flow decisions they concern (service.flows.triggers), in this transaction:
    an event seen again (redelivered, or published after the PostgreSQL
    fallback logged it) decides nothing again."""
    if not events:
        return set()
    flows = await flow_triggers.load_flows(session)
    wanted = flow_triggers.types_wanted(flows)
    params = {
        "ids": [e.event_id for e in events],
        "keys": [e.contact_key for e in events],
        "emails": [e.email for e in events],
        "metrics": [e.metric for e in events],
        "occurred": [e.occurred_us for e in events],
        "properties": [e.payload_json.decode() for e in events],
        "accepted": [e.accepted_us for e in events],
        "max_retries": MAX_RETRIES,
        "now": now,
        "wanted": None if report_new else sorted(wanted),
    }
    inserted = set(await session.scalars(_INSERT_LOG_ROWS, params))
    # Segments with event conditions follow within a moment (a repeated event
    # changes nothing: evaluating it again finds the same). Their lag counts
    # from when the oldest event was accepted.
    accepted = [e.accepted_us for e in events if e.accepted_us is not None]
    oldest = EPOCH + timedelta(microseconds=min(accepted)) if accepted else now
    await membership.mark_people(session, [(e.email, e.metric) for e in events], oldest)
    fresh = {e.event_id: e for e in events if e.event_id in inserted and e.metric in wanted}
    await flow_triggers.on_events(session, list(fresh.values()), flows, now)
    return inserted if report_new else set()


class PostgresEventSink:
    """Events accepted straight into PostgreSQL: event log and outbox row commit
    together, and the relay publishes them when the bus is reachable."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def accept(self, records: list[EventRecord], now: datetime) -> set[str]:
        async with self._db.transaction() as session:
            fresh = [r.log_event() for r in records]
            inserted = await insert_log_rows(session, fresh, now)
            await outbox.enqueue_many(
                session,
                [
                    (
                        r.contact_key,
                        bus_pb2.KIND_EVENT_TRACKED,
                        r.bus_message().SerializeToString(),
                    )
                    for r in records
                    if r.event_id in inserted
                ],
                now=now,
            )
        return inserted
