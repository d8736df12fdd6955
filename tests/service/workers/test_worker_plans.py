"""The background loops' polls of their queue tables run on plans made for
each run (`service.storage.fresh_plans`), on a real PostgreSQL and nats-server.

Why it matters: the loops poll their queue tables (due timers, segment
signals, picked waitlist subscriptions, the outbox) several times a second
from connections that live for days. PostgreSQL may switch a prepared
statement to a cached generic plan after five runs; one made while an analysed table was
empty scans it whole, and the timers' take-and-delete joined it with itself:
in the bench, after a million timers were set, one batch ran for 88 s. The
plan counters PostgreSQL keeps per prepared statement show which plan each
run used."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.connection import Bus
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.deliveries import results
from service.storage.database import Database
from service.storage.fresh_plans import execute_afresh
from service.workers.attribution_worker import AttributionWorker
from service.workers.flow_worker import FlowWorker
from service.workers.relay import OutboxRelay
from service.workers.segment_refresher import SegmentRefresher
from tests.harness import eventually, own_database
from tests.processes import NatsServer

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
RUNS = 8  # more than the five custom plans PostgreSQL makes before it may cache one
# The queue tables the loops poll (marketing_back_in_stock: the subscriptions).
QUEUE_TABLES = (
    "marketing_timer",
    "marketing_flow_signal",
    "marketing_back_in_stock",
    "marketing_restock",
    "marketing_segment_pending",
    "marketing_attribution_pending",
    "marketing_outbox o SET",  # the result recorder's settling of the rows results name
)
_PLANS = text(
    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
    " WHERE statement ~ :tables"
)
_SHOW = text("SHOW plan_cache_mode")
_TIMERS = text(
    "INSERT INTO marketing_timer (kind, key, contact_id, due_at, base_at, payload)"
    " SELECT 'enrolments_end', 'welcome@' || n, NULL, CAST(:due AS timestamptz), :due,"
    "        jsonb_build_object('flow_id', 'welcome', 'begun_at', n)"
    " FROM generate_series(1, :count) AS n"
)
_OUTBOX_ROW = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status) "
    "VALUES (:id, 'plans', :kind, :payload, 'PENDING')"
)
_OUTBOX_LEFT = text("SELECT count(*) FROM marketing_outbox WHERE status = 'PENDING'")

Plans = list[tuple[str, int, int]]


def _result() -> bus_pb2.DeliveryResult:
    """A result for an outbox row that is not there (settles nothing)."""
    return bus_pb2.DeliveryResult(
        delivery_id=str(uuid.uuid4()), outcome=bus_pb2.OUTCOME_DELIVERED, attempts=1
    )


@pytest.fixture(scope="module")
def plans_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "plans") as url:
        yield url


async def _analysed_empty(url: str, *, connections: int) -> Database:
    """A pool of exactly `connections`, so that the runs land on connections
    the test can read back (prepared statements and their plans are a
    connection's own); the tables analysed empty, as after a quiet spell."""
    setup = create_async_engine(url)  # its statements are not among the pool's
    try:
        async with setup.begin() as conn:
            await conn.execute(text("TRUNCATE marketing_timer, marketing_outbox"))
            await conn.execute(text("ANALYZE"))
    finally:
        await setup.dispose()
    return Database(url, pool_size=connections, max_overflow=0)


async def _plans(db: Database, tables: tuple[str, ...], connections: int) -> Plans:
    """The plan counters of every pooled connection, all held at once so that
    each is read."""
    pool = [await db.engine.connect() for _ in range(connections)]
    try:
        found: Plans = []
        for conn in pool:
            rows = await conn.execute(_PLANS, {"tables": "|".join(tables)})
            found += [(statement, generic, custom) for statement, generic, custom in rows]
            assert await conn.scalar(_SHOW) == "auto", "back in the pool as it was"
        return found
    finally:
        for conn in pool:
            await conn.close()


def test_the_queue_polls_never_run_a_cached_plan(plans_db: str) -> None:
    async def scenario() -> tuple[Plans, Plans]:
        db = await _analysed_empty(plans_db, connections=1)
        try:
            worker = FlowWorker(db, lambda: NOW)
            segments = SegmentRefresher(db, lambda: NOW)
            attribution = AttributionWorker(db)
            for _ in range(RUNS):
                assert await worker.fire_due_once() == 0
                assert await worker.drain_signals_once() == 0
                assert await worker.notify_once() == 0
                await worker._until_next_due()  # the timer loop's pause between batches
                assert await segments.drain_once() == 0
                assert await attribution.step() == 0
                async with db.transaction() as session:  # the result recorder's batch
                    await results.record_outbox(session, [_result()], NOW)
            polled = await _plans(db, QUEUE_TABLES, 1)
            async with db.transaction() as session:
                await session.execute(_TIMERS, {"due": NOW - timedelta(seconds=1), "count": 2_000})
            assert await worker.fire_due_once() == 500, "a batch, through the index"
            return polled, await _plans(db, QUEUE_TABLES, 1)
        finally:
            await db.close()

    polled, after_rows_came = asyncio.run(scenario())
    assert {t for t in QUEUE_TABLES if any(t in s for s, _, _ in polled)} == set(QUEUE_TABLES)
    for statement, _, custom in polled:
        assert custom >= RUNS, f"planned for each run: {statement}"
    taken = [p for p in after_rows_came if "FOR UPDATE SKIP LOCKED" in p[0]]
    assert taken, after_rows_came
    for statement, generic, _ in taken:
        assert generic == 0, f"a cached plan ran: {statement}"


def test_the_relay_never_runs_a_cached_plan(plans_db: str, tmp_path: Path) -> None:
    nats_server = NatsServer(tmp_path / "nats")
    nats_server.start()

    async def scenario() -> Plans:
        db = await _analysed_empty(plans_db, connections=2)  # the relay's, and its pruning's
        bus = Bus(nats_server.url, name="test-relay-plans")
        bus.start()
        relay = OutboxRelay(db, bus)
        task = asyncio.create_task(relay.run())
        kind = kinds.name(bus_pb2.KIND_CONTACT_UPSERTED)
        payload = bus_pb2.ContactUpserted(email="ada@example.com").SerializeToString()

        async def all_published() -> bool:
            async with db.transaction() as session:
                return await session.scalar(_OUTBOX_LEFT) == 0

        try:
            for _ in range(RUNS):  # each its own batch: polled, published, marked
                async with db.transaction() as session:
                    row = {"id": uuid.uuid4(), "kind": kind, "payload": payload}
                    await session.execute(_OUTBOX_ROW, row)
                await eventually(all_published, timeout_s=30)
        finally:
            relay.stop()
            await task
            await bus.close()
        try:
            return await _plans(db, ("marketing_outbox",), 2)
        finally:
            await db.close()

    try:
        plans = asyncio.run(scenario())
    finally:
        nats_server.stop()
    relayed = [p for p in plans if "status = 'PENDING' ORDER BY seq" in p[0]]
    marked = [p for p in plans if "SET published_at" in p[0]]
    assert relayed and marked, plans
    for statement, generic, custom in relayed + marked:
        assert generic == 0, f"a cached plan ran: {statement}"
        assert custom >= RUNS, statement


def test_only_the_statement_run_afresh_is_planned_afresh(plans_db: str) -> None:
    async def scenario() -> tuple[str, str]:
        db = Database(plans_db, pool_size=1)
        try:
            async with db.transaction() as session:
                during = await execute_afresh(
                    session, text("SELECT :x || current_setting('plan_cache_mode')"), {"x": ""}
                )
                return during.scalar_one(), await session.scalar(_SHOW)
        finally:
            await db.close()

    during, after = asyncio.run(scenario())
    assert during == "force_custom_plan"
    assert after == "auto", "the transaction's later statements are planned as configured"
