"""The engagement recorder: applies what the providers' webhooks reported (the
dispatcher's receiver publishes each accepted delivery as an
EngagementReceived) to PostgreSQL, a batch of messages per transaction
(service.engagement.rules).

A batch whose transaction fails for another reason than PostgreSQL being out
of reach is recorded again one message at a time, each in a transaction of its
own, so that one message PostgreSQL refuses (a value it cannot store) never
holds the others back (the consumer redelivers without end). A message that
still fails for its values is logged with its id, counted
(`marketing_engagement_rejected`) and terminated: JetStream never delivers it
again. One that fails otherwise (a lost race, PostgreSQL gone meanwhile, or a
fault of ours, which would fail every message alike) is handed back for later,
never thrown away."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

from google.protobuf.message import DecodeError
from marketing.bus.v1 import bus_pb2
from marketing_runtime.acks import ack_all
from marketing_runtime.clock import Clock
from nats.aio.msg import Msg

from service.engagement.rules import Reported, record
from service.errors import MarketingError, UnavailableError
from service.metrics import ENGAGEMENT_REJECTED
from service.storage.database import Database
from service.storage.errors import refuses_values
from service.workers.event_log_writer import DB_RETRY_DELAY_S

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Read:
    """A message and its engagements; `id` names it in the log."""

    msg: Msg
    id: str
    reported: list[Reported]


class EngagementRecorder:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def handle(self, messages: list[Msg]) -> None:
        read = [_read(msg) for msg in messages]
        try:
            await self._record([r for one in read for r in one.reported])
        except UnavailableError as exc:
            log.warning("engagement recorder: %s", exc)
            await _hand_back(messages)
            return
        except Exception as exc:
            if len(read) == 1:
                await self._settle_failed(read[0], exc)
                return
            log.warning(
                "engagement recorder: a batch of %d messages not recorded (%s): "
                "recording them one at a time",
                len(read),
                _why(exc),
            )
            await self._one_at_a_time(read)
            return
        await ack_all(messages)

    async def _record(self, reported: Sequence[Reported]) -> None:
        async with self._db.transaction() as session:
            await record(session, reported, self._clock())

    async def _one_at_a_time(self, read: list[_Read]) -> None:
        """Each message in a transaction of its own: those recorded are acked
        together at the end, one that fails is settled as its failure says.
        PostgreSQL out of reach hands the rest back."""
        recorded: list[Msg] = []
        try:
            for position, one in enumerate(read):
                try:
                    await self._record(one.reported)
                except UnavailableError as exc:
                    log.warning("engagement recorder: %s", exc)
                    await _hand_back([r.msg for r in read[position:]])
                    return
                except Exception as exc:
                    await self._settle_failed(one, exc)
                else:
                    recorded.append(one.msg)
        finally:
            await ack_all(recorded)

    async def _settle_failed(self, one: _Read, exc: Exception) -> None:
        """A message that failed alone: terminated when PostgreSQL refused its
        values (trying again fails the same way), handed back otherwise."""
        retryable = isinstance(exc, MarketingError) and exc.retryable
        if not retryable and (refuses_values(exc) or isinstance(exc, MarketingError)):
            log.error(
                "engagement recorder: message %s rejected and terminated, its %d engagement(s) "
                "not recorded: %s",
                one.id,
                len(one.reported),
                _why(exc),
            )
            ENGAGEMENT_REJECTED.inc()
            await one.msg.term()
            return
        if retryable:
            log.warning("engagement recorder: message %s not recorded (%s)", one.id, _why(exc))
        else:
            log.error(
                "engagement recorder: message %s not recorded; handed back for later",
                one.id,
                exc_info=exc,
            )
        await one.msg.nak(delay=DB_RETRY_DELAY_S)


async def _hand_back(messages: Sequence[Msg]) -> None:
    for msg in messages:
        await msg.nak(delay=DB_RETRY_DELAY_S)


def _why(exc: BaseException) -> str:
    """The error's first line (not the statement and parameters SQLAlchemy adds)."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _read(msg: Msg) -> _Read:
    """A message's engagements. One that does not parse is logged and acked
    with the rest: asking for it again would not make it readable."""
    try:
        received = bus_pb2.EngagementReceived.FromString(msg.data)
    except DecodeError as exc:
        log.warning("engagement recorder: a message not read (%s)", exc)
        return _Read(msg, msg.reply, [])
    at = received.receive_time.ToDatetime(tzinfo=UTC)
    return _Read(msg, received.id or msg.reply, [Reported(e, at) for e in received.engagements])
