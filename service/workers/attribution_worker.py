"""Keeps `marketing_conversion` up to date (service.reports.attribution): takes
the people the triggers queued, a batch per transaction, and attributes their
orders again; sleeps `idle_s` when the queue is empty. Replicas share the
queue (SKIP LOCKED). On its first step it records the configured window; a
window other than the recorded one queues everyone again. In a rolling change
the replicas still running the old window work out the people they take
meanwhile with it, until those people's next order or touch: change the window
with the workers stopped to have every conversion follow it at once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from service.reports.attribution import adopt_window, attribute_pending
from service.storage.database import Database
from service.workers.repeat import repeat

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttributionSettings:
    window: timedelta = timedelta(days=5)  # MARKETING_ATTRIBUTION_WINDOW_S
    batch: int = 1000  # queue entries a transaction (an entry per order or touch)
    idle_s: float = 0.5  # how stale a conversion may be, at most, after its order or touch


DEFAULT_ATTRIBUTION_SETTINGS = AttributionSettings()


class AttributionWorker:
    def __init__(
        self, db: Database, settings: AttributionSettings = DEFAULT_ATTRIBUTION_SETTINGS
    ) -> None:
        self._db = db
        self._settings = settings
        self._stopping = asyncio.Event()
        self._window_adopted = False

    async def run(self) -> None:
        await repeat("attribution", self.step, self._pause, self._stopping)

    async def step(self) -> int:
        """One batch; how many queue entries it took. The first step
        records the configured window (a new one queues everyone again)."""
        if not self._window_adopted:
            async with self._db.transaction() as session:
                if await adopt_window(session, self._settings.window):
                    log.info(
                        "attribution window now %s: every conversion is worked out again",
                        self._settings.window,
                    )
            self._window_adopted = True
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
