"""The event-log writer: keeps PostgreSQL's event log up to date with the
events that came over the bus (accepted on the fast path)."""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError
from marketing.bus.v1 import bus_pb2
from marketing_runtime.acks import ack_all
from marketing_runtime.clock import Clock
from marketing_runtime.envelope import parse_delivery
from marketing_runtime.timestamps import timestamp_micros
from nats.aio.msg import Msg

from service.errors import UnavailableError
from service.events.bus_body import log_json
from service.events.event_log import LogEvent, insert_log_rows
from service.storage.database import Database

log = logging.getLogger(__name__)
# While PostgreSQL is unreachable, a batch is asked for again this much later.
DB_RETRY_DELAY_S = 2.0


class EventLogWriter:
    """Writes an event-log row for every event that came over the bus."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def handle(self, messages: list[Msg]) -> None:
        events = _log_events(messages)
        try:
            async with self._db.transaction() as session:
                await insert_log_rows(session, events, self._clock(), report_new=False)
        except UnavailableError as exc:
            log.warning("event log writer: %s", exc)
            for msg in messages:
                await msg.nak(delay=DB_RETRY_DELAY_S)
            return
        await ack_all(messages)


def _log_events(messages: list[Msg]) -> list[LogEvent]:
    """The events' log rows. A message that is no event this writer can log
    (one that does not parse, or an event without a body) is left out with a
    warning and acked with the rest: asking for it again would not make it
    readable, and would hold back every event of its batch. The dispatcher
    fails it on its own consumer, so it reaches the failed deliveries."""
    events = []
    for msg in messages:
        try:
            delivery = parse_delivery(msg.data)
            if delivery.type == bus_pb2.KIND_EVENT_TRACKED:
                events.append(_log_event(delivery))
        except (DecodeError, ValueError) as exc:
            log.warning("event log writer: a message not logged (%s)", exc)
    return events


def _log_event(delivery: bus_pb2.Delivery) -> LogEvent:
    event = delivery.event_tracked
    occurred, created = event.occur_time, delivery.create_time
    return LogEvent(
        event.event_id,
        delivery.contact_key,
        event.email,
        event.metric,
        timestamp_micros(occurred),
        log_json(event),
        timestamp_micros(created),
    )
