"""The service's background work on the bus: the outbox relay, the event-log
writer, the result recorder, the contact sync driver and its results
recorder, and the segment refresher, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from marketing_runtime import topology
from marketing_runtime.clock import Clock, utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.consumer_loop import consume

from service.storage.database import Database
from service.workers.event_log_writer import EventLogWriter
from service.workers.relay import DEFAULT_RETENTION, OutboxRelay
from service.workers.result_recorder import ResultRecorder
from service.workers.segment_refresher import DEFAULT_INTERVAL_S, SegmentRefresher
from service.workers.sync_driver import DEFAULT_DRIVER_SETTINGS, DriverSettings, SyncDriver
from service.workers.sync_result_recorder import SyncResultRecorder

# Fuller batches, fewer transactions: the event log and results need no
# sub-second freshness.
BATCH_LINGER_S = 0.2


class BusWorkers:
    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        clock: Clock = utc_now,
        outbox_retention: timedelta = DEFAULT_RETENTION,
        sync: DriverSettings = DEFAULT_DRIVER_SETTINGS,
        segment_refresh_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        self._bus = bus
        self._relay = OutboxRelay(db, bus, clock=clock, retention=outbox_retention)
        self._writer = EventLogWriter(db, clock)
        self._recorder = ResultRecorder(db, clock)
        self._sync_driver = SyncDriver(db, bus, clock=clock, settings=sync)
        self._sync_recorder = SyncResultRecorder(db, clock)
        self._segments = SegmentRefresher(db, clock, segment_refresh_s)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._relay.run(), name="outbox-relay"),
            asyncio.create_task(
                consume(
                    self._bus,
                    stream=topology.WORK_STREAM,
                    durable=topology.SERVICE_EVENT_LOG,
                    handle=self._writer.handle,
                    stopping=self._stopping,
                    linger_s=BATCH_LINGER_S,
                ),
                name="event-log-writer",
            ),
            asyncio.create_task(
                consume(
                    self._bus,
                    stream=topology.RESULTS_STREAM,
                    durable=topology.SERVICE_RESULTS,
                    handle=self._recorder.handle,
                    stopping=self._stopping,
                    linger_s=BATCH_LINGER_S,
                ),
                name="result-recorder",
            ),
            asyncio.create_task(self._sync_driver.run(), name="contact-sync-driver"),
            asyncio.create_task(
                consume(
                    self._bus,
                    stream=topology.RESULTS_STREAM,
                    durable=topology.SERVICE_SYNC_RESULTS,
                    handle=self._sync_recorder.handle,
                    stopping=self._stopping,
                    linger_s=0,  # each result may free the driver to publish
                ),
                name="contact-sync-result-recorder",
            ),
            asyncio.create_task(self._segments.run(), name="segment-refresher"),
        ]

    async def stop(self, grace_s: float = 5.0) -> None:
        """Finish the batch in hand, then stop; unacked messages are redelivered."""
        self._stopping.set()
        self._relay.stop()
        self._sync_driver.stop()
        self._segments.stop()
        _, late = await asyncio.wait(self._tasks, timeout=grace_s)
        for task in late:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
