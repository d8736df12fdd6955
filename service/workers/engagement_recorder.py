"""The engagement recorder: applies what the providers' webhooks reported (the
dispatcher's receiver publishes each accepted delivery as an
EngagementReceived) to PostgreSQL, a batch of messages per transaction
(service.engagement.rules)."""

from __future__ import annotations

import logging
from datetime import UTC

from google.protobuf.message import DecodeError
from marketing.bus.v1 import bus_pb2
from marketing_runtime.acks import ack_all
from marketing_runtime.clock import Clock
from nats.aio.msg import Msg

from service.engagement.rules import Reported, record
from service.errors import UnavailableError
from service.storage.database import Database
from service.workers.event_log_writer import DB_RETRY_DELAY_S

log = logging.getLogger(__name__)


class EngagementRecorder:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def handle(self, messages: list[Msg]) -> None:
        reported = [r for msg in messages for r in _read(msg)]
        try:
            async with self._db.transaction() as session:
                await record(session, reported, self._clock())
        except UnavailableError as exc:
            log.warning("engagement recorder: %s", exc)
            for msg in messages:
                await msg.nak(delay=DB_RETRY_DELAY_S)
            return
        await ack_all(messages)


def _read(msg: Msg) -> list[Reported]:
    """A message's engagements. One that does not parse is logged and acked
    with the rest: asking for it again would not make it readable."""
    try:
        received = bus_pb2.EngagementReceived.FromString(msg.data)
    except DecodeError as exc:
        log.warning("engagement recorder: a message not read (%s)", exc)
        return []
    at = received.receive_time.ToDatetime(tzinfo=UTC)
    return [Reported(e, at) for e in received.engagements]
