"""Waking a worker at once when another process commits work for it, by
PostgreSQL's LISTEN/NOTIFY: the transaction that makes the work calls `notify`
(PostgreSQL delivers it on commit, and never for a rollback), and the worker
`listen`s on a connection of its own, calling back (a `Wakeup` fired). The
worker keeps polling as before: a notification only ends its pause early, so
one lost with a connection costs that pause and nothing more."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from marketing_runtime import clock
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.database import Database

log = logging.getLogger(__name__)
# How often an idle listening connection is checked, and how long the check may
# take: a connection lost without a word (a cable pulled) would otherwise go
# unnoticed for the kernel's many minutes of retries. One the server closes is
# noticed at once.
CHECK_EVERY_S = 10.0
CHECK_TIMEOUT_S = 5.0
# Called on listening anew (payload ""): what was committed before is looked at then.
LISTENING = ""


async def notify(session: AsyncSession, channel: str, payload: str = "") -> None:
    """Tell `channel`'s listeners (`payload`: what it is about) once this
    transaction commits."""
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
    )


async def listen(
    db: Database,
    channel: str,
    fire: Callable[[str], None],
    stopping: asyncio.Event,
    backoff_s: Callable[[int], float],
) -> None:
    """Call `fire` with each notification's payload on `channel` (and with
    LISTENING on each listening anew) until `stopping` is set. While the database
    is away, tries again after `backoff_s(failures in a row)`."""
    failures = 0
    while not stopping.is_set():
        listened = False

        def began() -> None:
            nonlocal listened
            listened = True
            fire(LISTENING)

        try:
            await _listen_once(db, channel, fire, began, stopping)
        except Exception as exc:  # the database is away: the workers poll meanwhile
            failures = 1 if listened else failures + 1
            wait_s = backoff_s(failures)
            log.warning("listening on %s: %r; again in %.1f s", channel, exc, wait_s)
            await clock.pause(stopping, wait_s)


async def _listen_once(
    db: Database,
    channel: str,
    fire: Callable[[str], None],
    began: Callable[[], None],
    stopping: asyncio.Event,
) -> None:
    """Listen until `stopping` is set (`began` once listening), or raise once
    the connection is lost."""
    async with db.engine.connect() as conn:
        try:
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            lost = asyncio.Event()
            driver.add_termination_listener(lambda *_: lost.set())
            await driver.add_listener(channel, lambda *args: fire(args[-1]))
            began()
            while not stopping.is_set():
                await clock.pause_until((stopping, lost), CHECK_EVERY_S)
                if stopping.is_set():
                    return
                # Raises when the connection is gone (closed, or silent too long).
                await driver.execute("SELECT 1", timeout=CHECK_TIMEOUT_S)
        finally:
            # Never back into the pool still listening: closed instead.
            await conn.invalidate()
