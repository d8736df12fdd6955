"""Keeps `marketing_conversion` up to date (service.reports.attribution): takes
the people the triggers queued, a batch per transaction, and attributes their
orders again; sleeps `idle_s` when the queue is empty. Replicas share the
queue (SKIP LOCKED)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from service.reports.attribution import attribute_pending
from service.storage.database import Database
from service.workers.repeat import repeat


@dataclass(frozen=True)
class AttributionSettings:
    window: timedelta = timedelta(days=5)  # MARKETING_ATTRIBUTION_WINDOW_S
    batch: int = 1000  # people a transaction
    idle_s: float = 0.5  # how stale a conversion may be, at most, after its order or touch


DEFAULT_ATTRIBUTION_SETTINGS = AttributionSettings()


class AttributionWorker:
    def __init__(
        self, db: Database, settings: AttributionSettings = DEFAULT_ATTRIBUTION_SETTINGS
    ) -> None:
        self._db = db
        self._settings = settings
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await repeat("attribution", self.step, self._pause, self._stopping)

    async def step(self) -> int:
        """One batch; how many people it attributed again."""
        async with self._db.transaction() as session:
            return await attribute_pending(session, self._settings.window, self._settings.batch)

    async def drain(self) -> None:
        """Until the queue is empty (tests, tools)."""
        while await self.step():
            pass

    async def _pause(self, done: int) -> float:
        return 0.0 if done >= self._settings.batch else self._settings.idle_s

    def stop(self) -> None:
        self._stopping.set()
