"""The service's background work: on the bus, the outbox relay, the event-log
writer, the result recorder, the engagement recorder (provider webhooks), the
catalogue recorder (the provider's campaigns and flows), the contact sync
driver and its results recorder; on PostgreSQL alone, the segment refresher,
the flow worker, the order attribution, the one-click unsubscribes and the queue
gauges. Started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from marketing_runtime import topology
from marketing_runtime.clock import Clock, utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.consumer_loop import BatchHandler, consume

from service.storage.database import Database
from service.workers.attribution_worker import (
    DEFAULT_ATTRIBUTION_SETTINGS,
    AttributionSettings,
    AttributionWorker,
)
from service.workers.campaign_driver import (
    CampaignDriver,
    CampaignWork,
    campaign_result_recorder,
    development_campaign_work,
)
from service.workers.catalogue_recorder import CatalogueRecorder
from service.workers.engagement_recorder import EngagementRecorder
from service.workers.event_log_writer import EventLogWriter
from service.workers.flow_worker import DEFAULT_TIMER_SETTINGS, FlowWorker, TimerSettings
from service.workers.one_click_worker import (
    DEFAULT_ONE_CLICK_SETTINGS,
    OneClickSettings,
    OneClickWorker,
)
from service.workers.queue_gauges import (
    DEFAULT_QUEUE_GAUGE_SETTINGS,
    QueueGauges,
    QueueGaugeSettings,
)
from service.workers.relay import DEFAULT_RETENTION, OutboxRelay
from service.workers.result_recorder import ResultRecorder
from service.workers.segment_refresher import (
    DEFAULT_REFRESHER_SETTINGS,
    RefresherSettings,
    SegmentRefresher,
)
from service.workers.sync_driver import DEFAULT_DRIVER_SETTINGS, DriverSettings, SyncDriver
from service.workers.sync_result_recorder import sync_result_recorder

# Fuller batches, fewer transactions: the event log and results need no
# sub-second freshness.
BATCH_LINGER_S = 0.2


class BusWorkers:
    """The background work. Without a bus (no MARKETING_NATS_URL) only the
    segment refresher, the flow worker, the attribution, the one-click unsubscribes and the
    queue gauges run: they need PostgreSQL alone."""

    def __init__(
        self,
        db: Database,
        bus: Bus | None,
        *,
        clock: Clock = utc_now,
        outbox_retention: timedelta = DEFAULT_RETENTION,
        sync: DriverSettings = DEFAULT_DRIVER_SETTINGS,
        segments: RefresherSettings = DEFAULT_REFRESHER_SETTINGS,
        timer_settings: TimerSettings = DEFAULT_TIMER_SETTINGS,
        queue_gauges: QueueGaugeSettings = DEFAULT_QUEUE_GAUGE_SETTINGS,
        attribution: AttributionSettings = DEFAULT_ATTRIBUTION_SETTINGS,
        one_click: OneClickSettings = DEFAULT_ONE_CLICK_SETTINGS,
        campaigns: CampaignWork | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._relay = OutboxRelay(db, bus, clock=clock, retention=outbox_retention) if bus else None
        self._sync_driver = SyncDriver(db, bus, clock=clock, settings=sync) if bus else None
        campaign_work = campaigns or development_campaign_work()
        self.campaigns = CampaignDriver(db, bus, campaign_work, clock=clock) if bus else None
        self._segments = SegmentRefresher(db, clock, segments)
        self.flows = FlowWorker(db, clock, timer_settings)
        self._queue_gauges = QueueGauges(db, clock, queue_gauges)
        self.attribution = AttributionWorker(db, attribution)
        self.one_clicks = OneClickWorker(db, clock, one_click)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._segments.run(), name="segment-refresher"),
            asyncio.create_task(self.flows.run(), name="flow-worker"),
            asyncio.create_task(self._queue_gauges.run(), name="queue-gauges"),
            asyncio.create_task(self.attribution.run(), name="attribution"),
            asyncio.create_task(self.one_clicks.run(), name="one-click-unsubscribes"),
        ]
        if self._bus is not None:
            self._tasks += self._bus_tasks(self._bus)

    def _bus_tasks(self, bus: Bus) -> list[asyncio.Task[None]]:
        assert self._relay is not None and self._sync_driver is not None
        assert self.campaigns is not None
        return [
            asyncio.create_task(self._relay.run(), name="outbox-relay"),
            self._consumer(
                topology.WORK_STREAM,
                topology.SERVICE_EVENT_LOG,
                EventLogWriter(self._db, self._clock).handle,
                BATCH_LINGER_S,
                "event-log-writer",
            ),
            self._consumer(
                topology.RESULTS_STREAM,
                topology.SERVICE_RESULTS,
                ResultRecorder(self._db, self._clock).handle,
                BATCH_LINGER_S,
                "result-recorder",
            ),
            self._consumer(
                topology.WEBHOOKS_STREAM,
                topology.SERVICE_ENGAGEMENT,
                EngagementRecorder(self._db, self._clock).handle,
                BATCH_LINGER_S,
                "engagement-recorder",
            ),
            self._consumer(
                topology.RESULTS_STREAM,
                topology.SERVICE_CATALOGUE,
                CatalogueRecorder(self._db).handle,
                BATCH_LINGER_S,
                "catalogue-recorder",
            ),
            asyncio.create_task(self._sync_driver.run(), name="contact-sync-driver"),
            self._consumer(
                topology.RESULTS_STREAM,
                topology.SERVICE_SYNC_RESULTS,
                sync_result_recorder(self._db, self._clock).handle,
                0,  # each result may free the driver to publish
                "contact-sync-result-recorder",
            ),
            asyncio.create_task(self.campaigns.run(), name="campaign-driver"),
            self._consumer(
                topology.RESULTS_STREAM,
                topology.SERVICE_CAMPAIGN_RESULTS,
                campaign_result_recorder(self._db, self._clock, self.campaigns.wake).handle,
                BATCH_LINGER_S,
                "campaign-result-recorder",
            ),
        ]

    def _consumer(
        self,
        stream: str,
        durable: str,
        handle: BatchHandler,
        linger_s: float,
        name: str,
    ) -> asyncio.Task[None]:
        assert self._bus is not None
        work = consume(
            self._bus,
            stream=stream,
            durable=durable,
            handle=handle,
            stopping=self._stopping,
            linger_s=linger_s,
        )
        return asyncio.create_task(work, name=name)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Finish the batch in hand, then stop; unacked messages are redelivered."""
        self._stopping.set()
        if self._relay is not None:
            self._relay.stop()
        if self._sync_driver is not None:
            self._sync_driver.stop()
        if self.campaigns is not None:
            self.campaigns.stop()
        self._segments.stop()
        self.flows.stop()
        self._queue_gauges.stop()
        self.attribution.stop()
        self.one_clicks.stop()
        _, late = await asyncio.wait(self._tasks, timeout=grace_s)
        for task in late:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
