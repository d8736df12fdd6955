"""The result recorder: applies what the dispatcher did (results on the bus)
to PostgreSQL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from marketing.bus.v1 import bus_pb2
from marketing_runtime.clock import Clock
from marketing_runtime.envelope import parse_results
from nats.aio.msg import Msg

from service.deliveries import results as delivery_results
from service.errors import UnavailableError
from service.storage.database import Database
from service.workers.event_log_writer import DB_RETRY_DELAY_S

log = logging.getLogger(__name__)
# A result for an event whose log row never appears (its person was erased
# meanwhile) is given up on once it is this old; until then it waits for the
# event-log writer, however long PostgreSQL or the writer were behind.
MAX_RESULT_WAIT = timedelta(hours=1)


class ResultRecorder:
    """Records the dispatcher's outcomes: event log status, outbox status,
    contact sync time and provider id, and failed work for manual review."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def handle(self, messages: list[Msg]) -> None:
        parsed = [(msg, parse_results(msg.data)) for msg in messages]
        results = [result for _, batch in parsed for result in _attributed(batch)]
        events = [r for r in results if r.type == bus_pb2.KIND_EVENT_TRACKED]
        others = [r for r in results if r.type != bus_pb2.KIND_EVENT_TRACKED]
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


def _attributed(batch: list[bus_pb2.DeliveryResult]) -> list[bus_pb2.DeliveryResult]:
    """The results whose kind is known. One without (of an old release's
    delivery of a kind nobody knows) names no event-log row or outbox row we
    could find by kind: it is logged and left out, so it never holds up the
    others; its dead letter is on the bus for review."""
    known = [r for r in batch if r.type != bus_pb2.KIND_UNSPECIFIED]
    for r in batch:
        if r.type == bus_pb2.KIND_UNSPECIFIED:
            log.warning(
                "result recorder: result for delivery %r of unknown kind %r (%s) not recorded",
                r.delivery_id,
                r.kind,
                bus_pb2.Outcome.Name(r.outcome),
            )
    return known


async def _settle(msg: Msg, row_missing: bool) -> None:
    """Ack, or ask again later when an event-log row has not been written yet
    (recording is idempotent, so the results already recorded may repeat)."""
    published = msg.metadata.timestamp
    fresh = published is None or datetime.now(UTC) - published < MAX_RESULT_WAIT
    if row_missing and fresh:
        await msg.nak(delay=1.0)
    else:
        await msg.ack()
