"""Holding messages longer than JetStream's ack wait without losing them to
another replica: a held message gets an in-progress ack (+WPI) every third of
the ack wait, which restarts its ack wait on the server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from service.bus.topology import ACK_WAIT_S

Sleep = Callable[[float], Awaitable[None]]


def keepalive_every(ack_wait_s: float) -> float:
    """A third of the ack wait: a message handed from the fetch buffer to a
    worker may wait up to one interval in each before its next +WPI."""
    return ack_wait_s / 3


class Holding:
    """Messages in hand, kept alive until each is settled.

    A settled (acked or nak'ed) message gets no more +WPI: JetStream restarts
    the timer of a message on every progress ack, so one after a nak would cut
    the nak's delay (a provider's Retry-After) down to the ack wait."""

    def __init__(self, messages: Iterable[Msg], *, every_s: float, sleep: Sleep) -> None:
        self._held = {id(msg): msg for msg in messages}
        self._every_s = every_s
        self._sleep = sleep

    def settled(self, messages: Iterable[Msg]) -> None:
        """Stop keeping these alive (call before acking or nak'ing them)."""
        for msg in messages:
            self._held.pop(id(msg), None)

    async def keep(self) -> None:
        """Send +WPI for every message still held, every `every_s`, until cancelled."""
        while True:
            await self._sleep(self._every_s)
            for msg in list(self._held.values()):
                with contextlib.suppress(Exception):  # a lost connection: redelivered anyway
                    await msg.in_progress()


@contextlib.asynccontextmanager
async def holding(
    messages: Iterable[Msg], *, every_s: float, sleep: Sleep = asyncio.sleep
) -> AsyncIterator[Holding]:
    """Keep `messages` alive while the block runs (or until marked settled)."""
    held = Holding(messages, every_s=every_s, sleep=sleep)
    keeper = asyncio.create_task(held.keep(), name="keep-in-progress")
    try:
        yield held
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper


async def keep_in_progress(
    messages: list[Msg], every_s: float = keepalive_every(ACK_WAIT_S)
) -> None:
    """Keep `messages` alive until cancelled (for workers that settle a
    batch only after the keeper is cancelled)."""
    await Holding(messages, every_s=every_s, sleep=asyncio.sleep).keep()


async def set_ack_wait(js: JetStreamContext, stream: str, durable: str, seconds: float) -> None:
    """Give a durable consumer this ack wait (JetStream lets it change in place)."""
    info = await js.consumer_info(stream, durable)
    if info.config.ack_wait != seconds:
        info.config.ack_wait = seconds
        await js.add_consumer(stream, info.config)
