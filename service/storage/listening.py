"""Waking a worker at once when another process commits work for it, by
PostgreSQL's LISTEN/NOTIFY: the transaction that makes the work calls `notify`
(PostgreSQL delivers it on commit, and never for a rollback), and the worker
`listen`s on a connection of its own, calling back (a `Wakeup` fired). The worker keeps
polling as before: a notification only ends its pause early, so one lost with
a connection costs that pause and nothing more."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.database import Database

log = logging.getLogger(__name__)
# How often an idle listening connection is checked (a connection lost without a
# word would otherwise go unnoticed), and the pause before listening again.
CHECK_EVERY_S = 10.0
RETRY_S = 1.0


async def notify(session: AsyncSession, channel: str) -> None:
    """Tell `channel`'s listeners once this transaction commits."""
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


async def listen(
    db: Database, channel: str, fire: Callable[[], None], stopping: asyncio.Event
) -> None:
    """Call `fire` on each notification of `channel` (and on each listening
    anew: what was committed before is looked at then) until `stopping` is set."""
    while not stopping.is_set():
        try:
            await _listen_once(db, channel, fire, stopping)
        except Exception as exc:  # the database is away: the workers poll meanwhile
            log.warning("listening on %s: %r; again in %.0f s", channel, exc, RETRY_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), RETRY_S)


async def _listen_once(
    db: Database, channel: str, fire: Callable[[], None], stopping: asyncio.Event
) -> None:
    async with db.engine.connect() as conn:
        try:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            await driver.add_listener(channel, lambda *_: fire())
            fire()
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), CHECK_EVERY_S)
                await driver.execute("SELECT 1")  # a lost connection raises here
        finally:
            # Never back into the pool still listening: closed instead.
            await conn.invalidate()
