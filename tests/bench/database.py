"""The bench's view of PostgreSQL's own background work."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

POLL_S = 1.0
QUIET_POLLS = 2  # autovacuum starts table by table: quiet twice in a row
# By backend type alone: without pg_read_all_stats a worker's query reads
# "<insufficient privilege>", but it is still listed.
_RUNNING = text("SELECT query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
# Tables autovacuum finished (a vacuum or an analyze) since a moment.
_AUTOVACUUMED_SINCE = text(
    "SELECT relname FROM pg_stat_user_tables"
    " WHERE greatest(last_autovacuum, last_autoanalyze) >= :since ORDER BY relname"
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
                running = list(await connection.scalars(_RUNNING))
            seen |= {query.removeprefix("autovacuum: ") for query in running}
            quiet = 0 if running else quiet + 1
            if quiet < QUIET_POLLS:
                await asyncio.sleep(POLL_S)
    finally:
        await engine.dispose()
    if quiet < QUIET_POLLS:
        seen.add(f"(still busy after {timeout_s:.0f} s)")
    return seen


async def vacuum_database(database_url: str) -> float:
    """VACUUM (ANALYZE) every table, as autovacuum would once it got round to
    them, so that what the parts before wrote is not vacuumed in the middle of
    the next measurement (its launcher wakes once a minute, at no moment
    related to the bench's); the seconds it took."""
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    try:
        async with engine.connect() as connection:
            await connection.execute(text("VACUUM (ANALYZE)"))
    finally:
        await engine.dispose()
    return time.perf_counter() - started


async def autovacuumed_since(database_url: str, since: datetime) -> list[str]:
    """The tables autovacuum vacuumed or analysed since `since` (aware), and
    those it is working on now: work of PostgreSQL's own that shared the cores
    with what was measured then."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            done = list(await connection.scalars(_AUTOVACUUMED_SINCE, {"since": since}))
            running = list(await connection.scalars(_RUNNING))
    finally:
        await engine.dispose()
    return done + [f"{query.removeprefix('autovacuum: ')} (running)" for query in running]
