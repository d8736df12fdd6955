"""Holding messages longer than JetStream's ack wait without losing them to
another replica: a held message gets an in-progress ack (+WPI) every third of
the consumer's ack wait, which restarts its ack wait on the server.

Held messages are JetStream's to redeliver once their connection closes for
good (their acks cannot reach the server any more), so nothing held is sent
to the provider after that: workers pass `Holding.ensure_connected` as the
gate's guard and hand the batch back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable

from marketing_runtime.clock import Sleep
from nats.aio.msg import Msg
from nats.js import JetStreamContext

log = logging.getLogger(__name__)
Interval = Callable[[], float]  # seconds; asked anew before each keepalive round


def keepalive_every(ack_wait_s: float) -> float:
    """A third of the ack wait: a message handed from the fetch buffer to a
    worker may wait up to one interval in each before its next +WPI."""
    return ack_wait_s / 3


class ConnectionEnded(Exception):
    """The connection the messages came on closed for good: another replica
    gets them, so sending them now would send them twice."""


class AckWait:
    """A durable consumer's ack wait as the server has it now, and the
    keepalive interval that follows from it. Replicas configured differently
    each set their own at start (the last one wins), and any change reaches
    this replica within one keepalive interval via `follow`."""

    def __init__(self, stream: str, durable: str, seconds: float) -> None:
        self._stream, self._durable = stream, durable
        self.seconds = seconds

    def keepalive_s(self) -> float:
        return keepalive_every(self.seconds)

    async def read(self, js: JetStreamContext) -> None:
        info = await js.consumer_info(self._stream, self._durable)
        seconds = float(info.config.ack_wait or self.seconds)
        if seconds != self.seconds:
            log.warning(
                "%s: the consumer's ack wait is now %.1f s (was %.1f s; replicas configured "
                "differently?): keeping held messages alive every %.1f s",
                self._durable,
                seconds,
                self.seconds,
                keepalive_every(seconds),
            )
            self.seconds = seconds

    async def follow(self, js: JetStreamContext, sleep: Sleep = asyncio.sleep) -> None:
        """Re-read the ack wait every keepalive interval, until cancelled."""
        while True:
            await sleep(self.keepalive_s())
            with contextlib.suppress(Exception):  # NATS unreachable: keep the last value
                await self.read(js)


class Holding:
    """Messages in hand, kept alive until each is settled.

    A settled (acked or nak'ed) message gets no more +WPI: JetStream restarts
    the timer of a message on every progress ack, so one after a nak would cut
    the nak's delay (a provider's Retry-After) down to the ack wait."""

    def __init__(
        self,
        messages: Iterable[Msg],
        *,
        every_s: Interval,
        sleep: Sleep,
        ended: asyncio.Event | None = None,
    ) -> None:
        self._held = {id(msg): msg for msg in messages}
        self._every_s = every_s
        self._sleep = sleep
        self._ended = ended

    def ensure_connected(self) -> None:
        """A gate guard: raise ConnectionEnded once the connection the messages
        came on (`ended`, from Bus.connection_ended()) has closed for good."""
        if self._ended is not None and self._ended.is_set():
            raise ConnectionEnded()

    def add(self, messages: Iterable[Msg]) -> None:
        """Hold these too (taken as more of the batch while it is handled)."""
        self._held.update((id(msg), msg) for msg in messages)

    def settled(self, messages: Iterable[Msg]) -> None:
        """Stop keeping these alive (call before acking or nak'ing them)."""
        for msg in messages:
            self._held.pop(id(msg), None)

    async def hand_back(self) -> int:
        """Nak every message still held, for redelivery now; how many. On a
        closed connection the naks are lost and the ack wait does it instead."""
        messages = list(self._held.values())
        self.settled(messages)
        for msg in messages:
            with contextlib.suppress(Exception):
                await msg.nak()
        return len(messages)

    async def keep(self) -> None:
        """Send +WPI for every message still held, every `every_s()`, until cancelled."""
        while True:
            await self._sleep(self._every_s())
            for msg in list(self._held.values()):
                with contextlib.suppress(Exception):  # a lost connection: redelivered anyway
                    await msg.in_progress()


@contextlib.asynccontextmanager
async def holding(
    messages: Iterable[Msg],
    *,
    every_s: Interval,
    sleep: Sleep = asyncio.sleep,
    ended: asyncio.Event | None = None,
) -> AsyncIterator[Holding]:
    """Keep `messages` alive while the block runs (or until marked settled)."""
    held = Holding(messages, every_s=every_s, sleep=sleep, ended=ended)
    keeper = asyncio.create_task(held.keep(), name="keep-in-progress")
    try:
        yield held
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def set_ack_wait(js: JetStreamContext, stream: str, durable: str, seconds: float) -> None:
    """Give a durable consumer this ack wait (JetStream lets it change in place)."""
    info = await js.consumer_info(stream, durable)
    if info.config.ack_wait != seconds:
        info.config.ack_wait = seconds
        await js.add_consumer(stream, info.config)
