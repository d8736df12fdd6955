"""Re-evaluates the segments whose membership moves as time passes ("bought
in the last 90 days", "no purchase for 90 days") every `interval_s`: a
contact whose last purchase turns 90 days old leaves (or joins) within one
interval, with no change of their own to trigger it.

Every replica runs one; a transaction-scoped advisory lock lets one of them
do each round (two at once would be safe, only wasted: joins and leaves are
idempotent and each is recorded once)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from marketing_runtime.clock import Clock
from sqlalchemy import text

from service.errors import MarketingError
from service.segments import membership
from service.storage.database import Database

log = logging.getLogger(__name__)
DEFAULT_INTERVAL_S = 60.0
_ROUND_LOCK = text("SELECT pg_try_advisory_xact_lock(0x73656772)")  # "segr"


class SegmentRefresher:
    def __init__(self, db: Database, clock: Clock, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self._db = db
        self._clock = clock
        self._interval_s = interval_s
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.refresh_once()
            except MarketingError as exc:  # PostgreSQL unreachable: the next round
                log.warning("segment refresher: %s", exc)
            except Exception:  # a bug must not end the rounds for good
                log.exception("segment refresher: a round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)

    async def refresh_once(self) -> int:
        """One round; how many segments it re-evaluated (0 when another replica
        holds the round)."""
        async with self._db.transaction() as session:
            refreshed = 0
            if await session.scalar(_ROUND_LOCK):
                refreshed = await membership.refresh_relative(session, self._clock())
            await membership.count_members(session)  # every replica's gauge
            return refreshed

    def stop(self) -> None:
        self._stopping.set()
