"""PostgreSQL's own background work, as the bench waits for it, does it ahead
(a vacuum before a measurement) and notes where it overlapped one."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from tests.harness import admin_statement

POLL_S = 1.0
QUIET_POLLS = 2  # autovacuum starts table by table: quiet twice in a row
# By backend type alone: without pg_read_all_stats a worker's query reads
# "<insufficient privilege>", but it is still listed. This database's only (the
# statistics below are too), with when its work began.
_RUNNING = text(
    "SELECT query, xact_start FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'"
    " AND datname = current_database()"
)
# Tables (TOAST tables too) autovacuum finished a vacuum or an analyze of in a span.
_AUTOVACUUMED_BETWEEN = text(
    "SELECT relname FROM pg_stat_all_tables"
    " WHERE greatest(last_autovacuum, last_autoanalyze) BETWEEN :since AND :until"
    " ORDER BY relname"
)


async def wait_for_autovacuum(database_url: str, timeout_s: float) -> set[str]:
    """Wait (at most `timeout_s`) until no autovacuum worker is busy; the
    tables it was seen working on."""
    engine = create_async_engine(database_url)
    seen: set[str] = set()
    quiet = 0
    deadline = time.monotonic() + timeout_s
    try:
        while quiet < QUIET_POLLS and time.monotonic() < deadline:
            async with engine.connect() as connection:
                running = [table for table, _ in await _autovacuum_running(connection)]
            seen |= set(running)
            quiet = 0 if running else quiet + 1
            if quiet < QUIET_POLLS:
                await asyncio.sleep(POLL_S)
    finally:
        await engine.dispose()
    if quiet < QUIET_POLLS:
        seen.add(f"(still busy after {timeout_s:.0f} s)")
    return seen


async def _autovacuum_running(connection: AsyncConnection) -> list[tuple[str, datetime | None]]:
    """What autovacuum works on now ("VACUUM ANALYZE public.<table>", say), and since when."""
    rows = (await connection.execute(_RUNNING)).all()
    return [(query.removeprefix("autovacuum: "), began) for query, began in rows]


async def vacuum_database(database_url: str) -> float:
    """VACUUM (ANALYZE) every table, as autovacuum would once it got round to
    them, so that what the parts before wrote is not vacuumed in the middle of
    the next measurement (its launcher wakes once a minute, at no moment
    related to the bench's); the seconds it took."""
    started = time.perf_counter()
    await admin_statement(database_url, "VACUUM (ANALYZE)")
    return time.perf_counter() - started


async def autovacuumed_between(database_url: str, since: datetime, until: datetime) -> list[str]:
    """What autovacuum worked on from `since` to `until` (both aware): the tables
    it finished with then, and what it began by `until` and works on still. Work
    of PostgreSQL's own that shared the cores with what was measured then."""
    assert since.tzinfo is not None and until.tzinfo is not None, "aware datetimes"
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            span = {"since": since, "until": until}
            done = list(await connection.scalars(_AUTOVACUUMED_BETWEEN, span))
            running = await _autovacuum_running(connection)
    finally:
        await engine.dispose()
    still = [f"{work} (still running)" for work, began in running if began and began <= until]
    return done + still
