"""Time as an injectable dependency, so timing rules can be tested without waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
# The one way a worker waits, so tests can drive it on a virtual clock.
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def pause(stopping: asyncio.Event, seconds: float, sleep: Sleep = asyncio.sleep) -> None:
    """Wait `seconds` (by `sleep`), or less: a pause ends as soon as `stopping` is set."""
    if stopping.is_set():
        return
    waits = (asyncio.ensure_future(sleep(seconds)), asyncio.ensure_future(stopping.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wait
