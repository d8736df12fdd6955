"""A clock that runs `speed` times faster than real time and stands still while a
provider call is in flight, shared by dispatcher replicas in one event loop and the
sandbox (its epoch clock, in another thread).

Sped up, a minute's window passes in seconds; standing still during a call, the
sandbox sees each call at the time it left, so what it counts per window is what
the budget allowed, with no real latency, which the speed would magnify, to blur
it. Waits are real sleeps of the remaining time divided by the speed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.dispatcher.budget.helpers import EPOCH0


class ScaledClock:
    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._stopped_for = 0.0  # real seconds spent standing still
        self._calls = 0
        self._stopped_at = 0.0

    def monotonic(self) -> float:
        """Virtual seconds since the clock was made."""
        with self._lock:
            real = (self._stopped_at if self._calls else time.monotonic()) - self._started
            return (real - self._stopped_for) * self.speed

    def epoch(self) -> float:
        return EPOCH0 + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        deadline = self.monotonic() + max(0.0, seconds)
        # Time stands still during calls: a real sleep may end early on this clock.
        while (left := deadline - self.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left / self.speed)
        await asyncio.sleep(0)

    @contextmanager
    def standing_still(self) -> Iterator[None]:
        """Time does not pass while any such block is open."""
        with self._lock:
            if not self._calls:
                self._stopped_at = time.monotonic()
            self._calls += 1
        try:
            yield
        finally:
            with self._lock:
                self._calls -= 1
                if not self._calls:
                    self._stopped_for += time.monotonic() - self._stopped_at
