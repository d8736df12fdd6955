"""The pull-consumer loop shared by the service's consumers and the dispatcher:
fetch a batch from a durable consumer, hand it over, repeat until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

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
    linger_s: float = 0.0,
    may_fetch: Callable[[], bool] = lambda: True,
) -> None:
    """Fetch up to `batch` messages (waiting at most `wait_s` for the first,
    then up to `linger_s` more to fill the batch) and pass them to `handle`,
    which acks or naks each. While `may_fetch()` is false, fetch nothing."""
    subscription = None
    bound_to: JetStreamContext | None = None
    while not stopping.is_set():
        js = bus.js
        if js is None or not may_fetch():
            await _pause(stopping, UNAVAILABLE_WAIT_S if js is None else wait_s)
            continue
        try:
            if subscription is None or bound_to is not js:
                subscription = await js.pull_subscribe_bind(durable=durable, stream=stream)
                bound_to = js
            messages = await subscription.fetch(batch=batch, timeout=wait_s)
        except (nats.errors.TimeoutError, TimeoutError):
            continue
        except Exception as exc:
            log.warning("%s: fetch failed: %r", durable, exc)
            await _pause(stopping, UNAVAILABLE_WAIT_S)
            continue
        messages += await _linger(subscription, batch - len(messages), linger_s)
        try:
            await handle(messages)
        except Exception:
            # The loop must outlive any one batch: hand it back for redelivery.
            log.exception("%s: handling a batch of %d failed", durable, len(messages))
            await _hand_back(messages)
            await _pause(stopping, UNAVAILABLE_WAIT_S)


async def _linger(subscription: Any, room: int, linger_s: float) -> list[Msg]:
    """Top up a partly filled batch for a short while: bigger provider calls,
    and a trickle still leaves within `linger_s`."""
    found: list[Msg] = []
    deadline = time.monotonic() + linger_s
    while room > len(found) and (left := deadline - time.monotonic()) > 0.001:
        try:
            found += await subscription.fetch(batch=room - len(found), timeout=left)
        except Exception:  # a timeout (of either kind) or a hiccup: send what we have
            break
    return found


async def _hand_back(messages: list[Msg]) -> None:
    for msg in messages:
        with contextlib.suppress(Exception):
            await msg.nak(delay=UNAVAILABLE_WAIT_S)


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
