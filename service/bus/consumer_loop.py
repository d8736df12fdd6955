"""The pull-consumer loop shared by the service's consumers and the dispatcher:
fetch a batch from a durable consumer, hand it over, repeat until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from service.bus.connection import Bus

log = logging.getLogger(__name__)
BatchHandler = Callable[[list[Msg]], Awaitable[None]]
UNAVAILABLE_WAIT_S = 1.0


async def consume(
    bus: Bus,
    *,
    stream: str,
    durable: str,
    handle: BatchHandler,
    stopping: asyncio.Event,
    batch: int = 1000,
    wait_s: float = 0.5,
) -> None:
    """Fetch up to `batch` messages (waiting at most `wait_s` for the first)
    and pass them to `handle`, which acks or naks each."""
    subscription = None
    bound_to: JetStreamContext | None = None
    while not stopping.is_set():
        js = bus.js
        if js is None:
            await _pause(stopping, UNAVAILABLE_WAIT_S)
            continue
        try:
            if subscription is None or bound_to is not js:
                subscription = await js.pull_subscribe_bind(durable=durable, stream=stream)
                bound_to = js
            messages = await subscription.fetch(batch=batch, timeout=wait_s)
        except nats.errors.TimeoutError:
            continue
        except Exception as exc:
            log.warning("%s: fetch failed: %s", durable, exc)
            await _pause(stopping, UNAVAILABLE_WAIT_S)
            continue
        await handle(messages)


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
