"""The bench's view of PostgreSQL's own background work."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

POLL_S = 1.0
QUIET_POLLS = 2  # autovacuum starts table by table: quiet twice in a row
# By backend type alone: without pg_read_all_stats a worker's query reads
# "<insufficient privilege>", but it is still listed.
_RUNNING = text("SELECT query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")


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
