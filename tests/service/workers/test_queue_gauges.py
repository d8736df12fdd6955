"""The queue gauges loop on a real PostgreSQL: it sets
`marketing_queue_items{state}` and `marketing_queue_oldest_age_seconds{state}`
from the outbox, follows its changes every interval, outlives a failing
database (logged, then tried again) and stops when asked; the workers start it
whether or not there is a bus, every MARKETING_QUEUE_GAUGES_S (15 s)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import text

from service.settings import ServiceSettings
from service.storage.database import Database
from service.workers.queue_gauges import (
    DEFAULT_QUEUE_GAUGE_SETTINGS,
    QueueGauges,
    QueueGaugeSettings,
)
from service.workers.runner import BusWorkers
from tests.harness import eventually, own_database

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)
_ROW = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status, created_at, "
    "completed_at) VALUES (:id, 'k', 'contact.upserted', '', CAST(:status AS outbox_status), "
    ":created, :completed)"
)
# A database that fails the loop's reads: the outbox is not where it looks.
_HIDE = text("ALTER TABLE marketing_outbox RENAME TO marketing_outbox_hidden")
_SHOW = text("ALTER TABLE marketing_outbox_hidden RENAME TO marketing_outbox")


class _Gauges:
    """Gauges of the test's own (the loop's defaults are process-wide, and the
    session's service harness runs a loop of its own)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.items = Gauge("marketing_queue_items", "", ["state"], registry=self.registry)
        self.age = Gauge(
            "marketing_queue_oldest_age_seconds", "", ["state"], registry=self.registry
        )

    def read(self) -> dict[str, float | None]:
        get = self.registry.get_sample_value
        return {
            "pending": get("marketing_queue_items", {"state": "pending"}),
            "in_flight": get("marketing_queue_items", {"state": "in_flight"}),
            "failed": get("marketing_queue_items", {"state": "failed"}),
            "pending_age": get("marketing_queue_oldest_age_seconds", {"state": "pending"}),
            "failed_age": get("marketing_queue_oldest_age_seconds", {"state": "failed"}),
        }


async def _insert(db: Database, status: str, created: timedelta, failed: timedelta | None) -> None:
    async with db.transaction() as session:
        await session.execute(
            _ROW,
            {
                "id": uuid.uuid4(),
                "status": status,
                "created": NOW - created,
                "completed": None if failed is None else NOW - failed,
            },
        )


def test_the_loop_follows_the_outbox_outlives_a_database_error_and_stops(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    gauges = _Gauges()

    async def reads(expected: dict[str, float]) -> dict[str, float | None]:
        async def check() -> dict[str, float | None] | None:
            seen = gauges.read()
            return seen if seen == expected else None

        return await eventually(check, timeout_s=20)

    async def logged_failure() -> bool:
        return any(
            record.name == "service.workers.repeat"
            and record.getMessage().startswith("queue gauges")
            for record in caplog.records
        )

    async def scenario(url: str) -> None:
        db = Database(url)
        loop = QueueGauges(
            db,
            lambda: NOW,
            QueueGaugeSettings(interval_s=0.05),
            items=gauges.items,
            oldest_age=gauges.age,
        )
        task = asyncio.create_task(loop.run())
        try:
            zero: dict[str, float] = {
                "pending": 0,
                "in_flight": 0,
                "failed": 0,
                "pending_age": 0,
                "failed_age": 0,
            }
            await reads(zero)
            await _insert(db, "PENDING", timedelta(minutes=6), None)
            await _insert(db, "PENDING", timedelta(seconds=10), None)
            await _insert(db, "IN_FLIGHT", timedelta(minutes=30), None)
            await _insert(db, "FAILED", timedelta(days=2), timedelta(hours=25))
            await _insert(db, "COMPLETED", timedelta(days=3), timedelta(days=3))
            first: dict[str, float] = {
                "pending": 2,
                "in_flight": 1,
                "failed": 1,
                "pending_age": 360.0,
            }
            await reads(first | {"failed_age": 90_000.0})

            async with db.transaction() as session:
                await session.execute(_HIDE)
            await eventually(logged_failure, timeout_s=20)
            assert gauges.read() == first | {"failed_age": 90_000.0}, "the last values stay"
            assert not task.done(), "a database error does not end the loop"
            async with db.transaction() as session:
                await session.execute(_SHOW)
            await _insert(db, "FAILED", timedelta(days=1), None)  # no completed_at: its creation
            await reads(first | {"failed": 2, "failed_age": 90_000.0})
            await _insert(db, "FAILED", timedelta(days=5), timedelta(days=4))
            await reads(first | {"failed": 3, "failed_age": 4 * 86_400.0})
        finally:
            loop.stop()
            await asyncio.wait_for(task, timeout=5)  # stops cleanly, without being cancelled
            await db.close()

    with (
        caplog.at_level(logging.WARNING, logger="service.workers.repeat"),
        own_database(database_url, "queue_gauges") as url,
    ):
        asyncio.run(scenario(url))


def test_the_workers_run_the_loop_without_a_bus_too(database_url: str) -> None:
    async def names() -> set[str]:
        return {task.get_name() for task in asyncio.all_tasks()}

    async def scenario(url: str) -> tuple[set[str], set[str]]:
        db = Database(url)
        try:
            workers = BusWorkers(db, None, queue_gauges=QueueGaugeSettings(interval_s=0.05))
            workers.start()
            running = await names()
            await workers.stop()
            return running, await names()
        finally:
            await db.close()

    with own_database(database_url, "queue_gauges_workers") as url:
        running, stopped = asyncio.run(scenario(url))
    assert "queue-gauges" in running
    assert "queue-gauges" not in stopped


def test_the_interval_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETING_DATABASE_URL", "postgresql://x@localhost/y")
    monkeypatch.delenv("MARKETING_QUEUE_GAUGES_S", raising=False)
    assert ServiceSettings().queue_gauges_s == DEFAULT_QUEUE_GAUGE_SETTINGS.interval_s == 15
    monkeypatch.setenv("MARKETING_QUEUE_GAUGES_S", "60")
    assert ServiceSettings().queue_gauges_s == 60
    monkeypatch.setenv("MARKETING_QUEUE_GAUGES_S", "0")
    with pytest.raises(ValueError, match="queue_gauges_s"):
        ServiceSettings()
