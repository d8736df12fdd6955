"""The service's own consumers: it keeps PostgreSQL up to date with what passed
over the bus (events accepted on the fast path) and what the dispatcher did."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from marketing.bus.v1 import bus_pb2
from marketing_runtime.acks import ack_all
from marketing_runtime.clock import Clock
from marketing_runtime.envelope import parse_delivery, parse_results
from nats.aio.msg import Msg

from service.deliveries import results as delivery_results
from service.deliveries.outbox import OutboxKind
from service.errors import UnavailableError
from service.events.event_log import LogEvent, insert_log_rows
from service.storage.database import Database

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
        events = [_log_event(parse_delivery(msg.data)) for msg in messages]
        try:
            async with self._db.transaction() as session:
                await insert_log_rows(session, events, self._clock(), report_new=False)
        except UnavailableError as exc:
            log.warning("event log writer: %s", exc)
            for msg in messages:
                await msg.nak(delay=DB_RETRY_DELAY_S)
            return
        await ack_all(messages)


def _log_event(delivery: bus_pb2.Delivery) -> LogEvent:
    created = delivery.create_time
    return LogEvent(
        contact_key=delivery.contact_key,
        payload_json=delivery.payload_json.decode(),
        accepted_us=created.seconds * 1_000_000 + created.nanos // 1000,
    )


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
