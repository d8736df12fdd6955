"""Time as an injectable dependency, so timing rules can be tested without waiting."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
# The one way a worker waits, so tests can drive it on a virtual clock.
Sleep = Callable[[float], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)
