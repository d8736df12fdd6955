"""The delivery queue's figures on a real PostgreSQL (GetQueueStats and the
queue gauges): pending, in flight and failed outbox rows, the age of the oldest
pending row (the processing lag) and of the oldest failed one, counted from
when it failed (its completed_at; its created_at when it has none)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from service.deliveries.queue import QueueStats, queue_stats
from service.storage.database import Database
from tests.harness import own_database

NOW = datetime(2026, 3, 4, 12, 0, 0, tzinfo=UTC)
_ROW = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status, created_at, "
    "completed_at) VALUES (:id, 'k', 'contact.upserted', '', CAST(:status AS outbox_status), "
    ":created, :completed)"
)


async def _insert(db: Database, rows: list[tuple[str, timedelta, timedelta | None]]) -> None:
    """Rows of (status, created this long before NOW, completed this long before NOW)."""
    async with db.transaction() as session:
        for status, created, completed in rows:
            await session.execute(
                _ROW,
                {
                    "id": uuid.uuid4(),
                    "status": status,
                    "created": NOW - created,
                    "completed": None if completed is None else NOW - completed,
                },
            )


def test_counts_and_the_oldest_pending_and_failed_rows_ages(database_url: str) -> None:
    async def scenario(url: str) -> tuple[QueueStats, QueueStats]:
        db = Database(url)
        try:
            empty = await queue_stats(db, now=NOW)
            await _insert(
                db,
                [
                    ("PENDING", timedelta(minutes=7), None),
                    ("PENDING", timedelta(minutes=1), None),
                    ("IN_FLIGHT", timedelta(hours=3), None),
                    # Created two days ago, failed 25 hours ago: 25 hours old as a failure.
                    ("FAILED", timedelta(days=2), timedelta(hours=25)),
                    ("FAILED", timedelta(hours=30), timedelta(hours=2)),
                    # Delivered long ago: in no figure.
                    ("COMPLETED", timedelta(days=9), timedelta(days=9)),
                ],
            )
            return empty, await queue_stats(db, now=NOW)
        finally:
            await db.close()

    with own_database(database_url, "queue_stats") as url:
        empty, stats = asyncio.run(scenario(url))
    assert empty == QueueStats(0, 0, 0, timedelta(0), timedelta(0))
    assert stats == QueueStats(
        pending=2,
        in_flight=1,
        failed=2,
        oldest_pending_age=timedelta(minutes=7),
        oldest_failed_age=timedelta(hours=25),
    )


def test_a_failed_row_without_completed_at_counts_from_its_creation(database_url: str) -> None:
    async def scenario(url: str) -> QueueStats:
        db = Database(url)
        try:
            await _insert(
                db,
                [
                    ("FAILED", timedelta(hours=30), None),
                    ("FAILED", timedelta(days=3), timedelta(hours=1)),
                    # A clock ahead of ours: no negative age.
                    ("PENDING", -timedelta(minutes=1), None),
                ],
            )
            return await queue_stats(db, now=NOW)
        finally:
            await db.close()

    with own_database(database_url, "queue_stats") as url:
        stats = asyncio.run(scenario(url))
    assert stats.oldest_failed_age == timedelta(hours=30)
    assert stats.oldest_pending_age == timedelta(0)
