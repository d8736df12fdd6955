"""Applies the one-click unsubscribes the preference page queued
(service.consent.one_click): a batch per transaction, each step of the
unsubscribe one statement for the whole batch (consent.unsubscribing), so a
click costs the worker tens of microseconds where applying it in the page's
request cost about 17 ms of the serving process. Sleeps `idle_s` when the queue is empty, so
a click is applied within about `idle_s` plus one batch's time (the README's
bound). Replicas share the queue: each skips the addresses another holds. A
batch rolled back (a crash, a lost connection) leaves its clicks queued."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from marketing_runtime.clock import Clock

from service.consent.unsubscribing import apply_oldest_one_clicks
from service.storage.database import Database
from service.workers.repeat import repeat


@dataclass(frozen=True)
class OneClickSettings:
    batch: int = 500  # addresses a transaction
    idle_s: float = 0.2  # the pause when the queue is empty: how long a click may wait


DEFAULT_ONE_CLICK_SETTINGS = OneClickSettings()


class OneClickWorker:
    def __init__(
        self, db: Database, clock: Clock, settings: OneClickSettings = DEFAULT_ONE_CLICK_SETTINGS
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await repeat("one-click unsubscribes", self.step, self._pause, self._stopping)

    async def step(self) -> int:
        """One batch; how many clicks it applied."""
        async with self._db.transaction() as session:
            return await apply_oldest_one_clicks(session, self._settings.batch, self._clock())

    async def drain(self) -> None:
        """Until no click is left that this worker may take (tests, tools)."""
        while await self.step():
            pass

    async def _pause(self, applied: int) -> float:
        return 0.0 if applied >= self._settings.batch else self._settings.idle_s

    def stop(self) -> None:
        self._stopping.set()
