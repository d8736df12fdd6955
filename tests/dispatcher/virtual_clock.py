"""A clock for driving dispatcher workers in-process: `monotonic` and `sleep`
for the code under test, and `advance_until` for the test, which moves time
from one sleeper's deadline to the next, letting real I/O settle in between."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    def sleepers(self) -> int:
        """Sleeps pending now: how a test tells that the code under test waits
        on virtual time rather than on real I/O."""
        return sum(not future.done() for _, _, future in self._sleepers)

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), future))
        await future

    async def advance_until(
        self, done: Callable[[], bool], settle: Callable[[], Awaitable[None]], *, limit_s: float
    ) -> None:
        """Wake sleepers in deadline order (settling after each) until `done()`;
        fail if that takes more than `limit_s` of virtual time."""
        await settle()
        for _ in range(100_000):  # waiting for real I/O while no sleeper is due
            if done():
                return
            if self.now > limit_s:
                raise AssertionError(f"not done after {limit_s} virtual seconds")
            if self._sleepers:
                deadline, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, deadline)
                if not future.done():
                    future.set_result(None)
            await settle()
        raise AssertionError("not done, and no sleeper left to wake")
