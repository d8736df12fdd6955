"""The service's own consumers: it keeps PostgreSQL up to date with what passed
over the bus (events accepted on the fast path) and what the dispatcher did."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from nats.aio.msg import Msg

from service.bus.envelope import parse_delivery, parse_results, payload_of
from service.clock import Clock
from service.errors import UnavailableError
from service.storage import delivery_results
from service.storage.database import Database
from service.storage.event_log import EventRecord, erased_after, insert_log_rows
from service.storage.outbox import OutboxKind

log = logging.getLogger(__name__)
DB_RETRY_DELAY_S = 2.0
# A result for an event whose log row never appears (its person was erased
# meanwhile) is given up on once it is this old; until then it waits for the
# event-log writer, however long PostgreSQL or the writer were behind.
MAX_RESULT_WAIT = timedelta(hours=1)


class EventLogWriter:
    """Writes an event-log row for every event that came over the bus."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def handle(self, messages: list[Msg]) -> None:
        records, accepted_at = [], {}
        for msg in messages:
            delivery = parse_delivery(msg.data)
            record = EventRecord.from_delivery_payload(delivery.contact_key, payload_of(delivery))
            records.append(record)
            accepted_at[record.event_id] = delivery.create_time.ToDatetime(tzinfo=UTC)
        try:
            async with self._db.transaction() as session:
                erased = await erased_after(session, records, accepted_at)
                await insert_log_rows(
                    session, [r for r in records if r.event_id not in erased], self._clock()
                )
        except UnavailableError as exc:
            log.warning("event log writer: %s", exc)
            for msg in messages:
                await msg.nak(delay=DB_RETRY_DELAY_S)
            return
        for msg in messages:
            await msg.ack()


class ResultRecorder:
    """Records the dispatcher's outcomes: event log status, outbox status,
    contact sync time and provider id, and failed work for manual review."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def handle(self, messages: list[Msg]) -> None:
        parsed = [(msg, parse_results(msg.data)) for msg in messages]
        results = [result for _, batch in parsed for result in batch]
        events = [r for r in results if r.kind == OutboxKind.EVENT_TRACKED]
        others = [r for r in results if r.kind != OutboxKind.EVENT_TRACKED]
        try:
            async with self._db.transaction() as session:
                missing = await delivery_results.record_events(session, events, self._clock())
                await delivery_results.record_outbox(session, others, self._clock())
        except UnavailableError as exc:
            log.warning("result recorder: %s", exc)
            for msg in messages:
                await msg.nak(delay=DB_RETRY_DELAY_S)
            return
        for msg, batch in parsed:
            await _settle(msg, any(r.delivery_id in missing for r in batch))


async def _settle(msg: Msg, row_missing: bool) -> None:
    """Ack, or ask again later when an event-log row has not been written yet
    (recording is idempotent, so the results already recorded may repeat)."""
    published = msg.metadata.timestamp
    fresh = published is None or datetime.now(UTC) - published < MAX_RESULT_WAIT
    if row_missing and fresh:
        await msg.nak(delay=1.0)
    else:
        await msg.ack()
