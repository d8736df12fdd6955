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
import logging
from dataclasses import dataclass

from marketing_runtime.clock import Clock
from sqlalchemy import text

from service.segments import membership
from service.storage.database import Database
from service.workers.repeat import repeat

log = logging.getLogger(__name__)
_ROUND_LOCK = text("SELECT pg_try_advisory_xact_lock(0x73656772)")  # "segr"


@dataclass(frozen=True)
class RefresherSettings:
    interval_s: float = 60.0  # MARKETING_SEGMENT_REFRESH_S
    drain_batch: int = 2000  # MARKETING_SEGMENT_DRAIN_BATCH
    drain_poll_s: float = 0.2  # MARKETING_SEGMENT_DRAIN_POLL_S


DEFAULT_REFRESHER_SETTINGS = RefresherSettings()


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
            repeat(
                "segment refresher: a round", self.refresh_once, self._round_pause, self._stopping
            ),
            repeat(
                "segment refresher: a drain", self.drain_once, self._drain_pause, self._stopping
            ),
        )

    async def _round_pause(self, _: int) -> float:
        return self._settings.interval_s

    async def _drain_pause(self, taken: int) -> float:
        """None between full batches: a backlog is worked off at full speed."""
        return 0.0 if taken >= self._settings.drain_batch else self._settings.drain_poll_s

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
