"""Keeps dynamic segments' members current, in two loops.

- Drain: the contacts whose changes (their row, consent, suppression, events,
  manual memberships) recorded them as pending are taken in batches of up to
  `drain_batch`, and every dynamic segment is evaluated for a batch at once;
  when a batch comes back short, the loop waits `drain_poll_s`. Replicas take
  disjoint batches (SKIP LOCKED).
- Rounds: every `interval_s`, the segments whose membership moves as time
  passes ("bought in the last 90 days", "no purchase for 90 days") are
  re-evaluated as a whole: a contact whose last purchase turns 90 days old
  leaves (or joins) within one interval, with no change of their own. A
  transaction-scoped advisory lock lets one replica do each round (two at
  once would be safe, only wasted: joins and leaves are idempotent and each
  is recorded once)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from marketing_runtime.clock import Clock
from sqlalchemy import text

from service.errors import MarketingError
from service.segments import membership
from service.storage.database import Database

log = logging.getLogger(__name__)
_ROUND_LOCK = text("SELECT pg_try_advisory_xact_lock(0x73656772)")  # "segr"


@dataclass(frozen=True)
class RefresherSettings:
    interval_s: float = 60.0  # MARKETING_SEGMENT_REFRESH_S
    drain_batch: int = 2000  # MARKETING_SEGMENT_DRAIN_BATCH
    drain_poll_s: float = 0.2  # MARKETING_SEGMENT_DRAIN_POLL_S


DEFAULT_REFRESHER_SETTINGS = RefresherSettings()


_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 30.0
_MAX_DOUBLINGS = 16


def backoff_s(failures: int) -> float:
    """The wait after `failures` failed steps in a row: doubling from half a
    second up to 30 s, so an unreachable database is not hammered (nor the
    log filled) five times a second."""
    if failures == 0:
        return 0.0
    doublings = min(failures - 1, _MAX_DOUBLINGS)  # no float overflow after days of failures
    return float(min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2**doublings))


class SegmentRefresher:
    def __init__(
        self, db: Database, clock: Clock, settings: RefresherSettings = DEFAULT_REFRESHER_SETTINGS
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(
            self._loop("a round", self.refresh_once, lambda _: self._settings.interval_s),
            self._loop("a drain", self.drain_once, self._drain_pause),
        )

    def _drain_pause(self, taken: int) -> float:
        """None between full batches: a backlog is worked off at full speed."""
        return 0.0 if taken >= self._settings.drain_batch else self._settings.drain_poll_s

    async def _loop(
        self, what: str, step: Callable[[], Awaitable[int]], pause: Callable[[int], float]
    ) -> None:
        failures = 0
        while not self._stopping.is_set():
            done = 0
            try:
                done = await step()
                failures = 0
            except MarketingError as exc:  # PostgreSQL unreachable: the next time
                failures += 1
                log.warning("segment refresher: %s: %s", what, exc)
            except Exception:  # a bug must not end the loop for good
                failures += 1
                log.exception("segment refresher: %s failed", what)
            wait_s = max(pause(done), backoff_s(failures))
            if wait_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), wait_s)

    async def refresh_once(self) -> int:
        """One round; how many segments it re-evaluated (0 when another replica
        holds the round)."""
        async with self._db.transaction() as session:
            refreshed = 0
            if await session.scalar(_ROUND_LOCK):
                refreshed = await membership.refresh_relative(session, self._clock())
            await membership.count_members(session)  # every replica's gauge
            return refreshed

    async def drain_once(self) -> int:
        """One batch of pending contacts evaluated; how many it took."""
        async with self._db.transaction() as session:
            return await membership.drain(session, self._clock(), self._settings.drain_batch)

    async def drain_all(self) -> int:
        """Every pending contact evaluated (tests, tools); how many."""
        total = 0
        while taken := await self.drain_once():
            total += taken
        return total

    def stop(self) -> None:
        self._stopping.set()
