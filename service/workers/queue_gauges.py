"""Exports the delivery queue (what GetQueueStats reads) as Prometheus gauges,
for the alert rules in service/monitoring/alerts.yml: every `interval_s`, the
pending, in-flight and failed items and the ages of the oldest pending and the
oldest failed outbox rows are read from PostgreSQL into
`marketing_queue_items{state}` and `marketing_queue_oldest_age_seconds{state}`,
and the entries waiting for the attribution worker into
`marketing_queue_attribution_entries`.

Every process running the workers reads and shows the same database-wide
values (the rules take their max). A failed read is logged and tried again
after a back-off (`repeat`); the gauges keep their last values meanwhile."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from marketing_runtime.clock import Clock
from prometheus_client import Gauge

from service import metrics
from service.deliveries.queue import QueueStats, queue_stats
from service.reports.attribution import attribution_queue
from service.storage.database import Database
from service.workers.repeat import repeat


@dataclass(frozen=True)
class QueueGaugeSettings:
    interval_s: float = 15.0  # MARKETING_QUEUE_GAUGES_S


DEFAULT_QUEUE_GAUGE_SETTINGS = QueueGaugeSettings()


class QueueGauges:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: QueueGaugeSettings = DEFAULT_QUEUE_GAUGE_SETTINGS,
        *,
        items: Gauge = metrics.QUEUE_ITEMS,
        oldest_age: Gauge = metrics.QUEUE_OLDEST_AGE,
        attribution: Gauge = metrics.ATTRIBUTION_QUEUE,
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._items = items  # by state; tests give gauges of their own
        self._oldest_age = oldest_age
        self._attribution = attribution
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        await repeat("queue gauges", self.refresh_once, self._pause, self._stopping)

    async def refresh_once(self) -> int:
        """Read the queue and set the gauges; how many items are pending or in flight."""
        stats = await queue_stats(self._db, now=self._clock())
        self._export(stats)
        self._attribution.set(await attribution_queue(self._db))
        return stats.pending + stats.in_flight

    def _export(self, stats: QueueStats) -> None:
        self._items.labels("pending").set(stats.pending)
        self._items.labels("in_flight").set(stats.in_flight)
        self._items.labels("failed").set(stats.failed)
        self._oldest_age.labels("pending").set(stats.oldest_pending_age.total_seconds())
        self._oldest_age.labels("failed").set(stats.oldest_failed_age.total_seconds())

    async def _pause(self, _: int) -> float:
        return self._settings.interval_s

    def stop(self) -> None:
        self._stopping.set()
