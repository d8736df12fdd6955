"""The flow worker's loops plan their statements afresh on every run
(`Database.transaction(fresh_plans=True)`), on a real PostgreSQL.

Why it matters: the loops poll their queue tables (due timers, segment
signals, picked waitlist subscriptions) several times a second from
connections that live for days. PostgreSQL switches a prepared statement to
a cached generic plan after five runs; one made while an analysed table was
empty scans it whole, and the timers' take-and-delete joined it with itself:
in the bench, after a million timers were set, one batch ran for 88 s. The
plan counters PostgreSQL keeps per prepared statement show which plan each
run used."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from service.storage.database import Database
from service.workers.flow_worker import FlowWorker
from tests.harness import own_database

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
RUNS = 8  # more than the five custom plans PostgreSQL makes before it may cache one
QUEUE_TABLES = ("marketing_timer", "marketing_flow_signal", "marketing_back_in_stock")
_PLANS = text(
    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
    " WHERE statement ~ :tables"
)
_TIMERS = text(
    "INSERT INTO marketing_timer (kind, key, contact_id, due_at, base_at, payload)"
    " SELECT 'enrolments_end', 'welcome@' || n, NULL, CAST(:due AS timestamptz), :due,"
    "        jsonb_build_object('flow_id', 'welcome', 'begun_at', n)"
    " FROM generate_series(1, :count) AS n"
)


@pytest.fixture(scope="module")
def plans_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "plans") as url:
        yield url


async def _one_connection(url: str) -> Database:
    """A pool of one connection, so that every run lands on the same one
    (prepared statements and their plans are a connection's own)."""
    db = Database(url, pool_size=1)
    db.engine.pool._max_overflow = 0  # type: ignore[attr-defined]
    async with db.transaction() as session:
        await session.execute(text("ANALYZE"))  # the tables seen empty, as after a quiet spell
    return db


async def _plans(db: Database) -> list[tuple[str, int, int]]:
    async with db.transaction() as session:
        rows = await session.execute(_PLANS, {"tables": "|".join(QUEUE_TABLES)})
        return [(statement, generic, custom) for statement, generic, custom in rows]


def test_the_loops_never_run_a_cached_plan(plans_db: str) -> None:
    async def scenario() -> None:
        db = await _one_connection(plans_db)
        try:
            worker = FlowWorker(db, lambda: NOW)
            for _ in range(RUNS):
                assert await worker.fire_due_once() == 0
                assert await worker.drain_signals_once() == 0
                assert await worker.notify_once() == 0
                await worker._until_next_due()  # the timer loop's pause between batches
            polled = await _plans(db)
            async with db.transaction() as session:
                await session.execute(_TIMERS, {"due": NOW - timedelta(seconds=1), "count": 2_000})
            assert await worker.fire_due_once() == 500, "a batch, through the index"
            after_rows_came = await _plans(db)
        finally:
            await db.close()
        assert {t for t in QUEUE_TABLES if any(t in s for s, _, _ in polled)} == set(QUEUE_TABLES)
        for statement, _, custom in polled:
            assert custom >= RUNS, f"planned for each run: {statement}"
        for statement, generic, _ in after_rows_came:
            assert generic == 0, f"a cached plan ran: {statement}"

    asyncio.run(scenario())


def test_fresh_plans_hold_for_their_transaction_only(plans_db: str) -> None:
    async def scenario() -> None:
        db = await _one_connection(plans_db)
        show = text("SHOW plan_cache_mode")
        try:
            async with db.transaction(fresh_plans=True) as session:
                assert await session.scalar(show) == "force_custom_plan"
            async with db.transaction() as session:
                assert await session.scalar(show) == "auto"
        finally:
            await db.close()

    asyncio.run(scenario())
