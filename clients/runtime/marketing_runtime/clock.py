"""Time as an injectable dependency, so timing rules can be tested without waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
# The one way a worker waits, so tests can drive it on a virtual clock.
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def pause(stopping: asyncio.Event, seconds: float, sleep: Sleep = asyncio.sleep) -> None:
    """Wait `seconds` (by `sleep`), or less: a pause ends as soon as `stopping` is set."""
    await pause_until((stopping,), seconds, sleep)


async def pause_until(
    events: Iterable[asyncio.Event], seconds: float, sleep: Sleep = asyncio.sleep
) -> None:
    """Wait `seconds` (by `sleep`), or less: until any of `events` is set."""
    watched = tuple(events)
    if any(event.is_set() for event in watched):
        return
    waits: list[asyncio.Future[object]] = [
        asyncio.ensure_future(wait) for wait in (sleep(seconds), *(e.wait() for e in watched))
    ]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wait
