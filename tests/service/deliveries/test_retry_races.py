"""RetryFailedDeliveries beside a writer that takes the same rows the other way
round, against the real PostgreSQL. The re-drive takes a failed event's outbox
row, then its event-log row; erasure takes a person's event-log rows before their
outbox rows. When the two cross, PostgreSQL aborts one of them (a deadlock): the
re-drive is then run again (Database.retried) rather than answering ABORTED."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from marketing.bus.v1 import bus_pb2
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from service.deliveries import outbox, rules
from service.storage.database import Database
from tests.harness import admin_statement, own_database, until_waiting_for

WAIT_S = 30  # the most a step waits for another
# Wide enough for a loaded machine's pause between the re-drive's wait and the
# cycle's closing (see _crossed); PostgreSQL's default is 1 s. Setting it needs a
# superuser, as the tests' own PostgreSQL has.
REDRIVE_DEADLOCK = "SET deadlock_timeout = '5s'"

_FAILED_EVENT = text(
    "INSERT INTO marketing_event_log"
    " (id, contact_key, type, data, occurred_at, status, retry_count, max_retries, error)"
    " VALUES (:id, 'k', 'viewed_product', '{}', now(), 'FAILED', 6, 6, 'gone')"
)
_FAILED_ROW = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status, error)"
    " VALUES (:id, 'k', :kind, :payload, 'FAILED', 'gone')"
)
_TAKE_EVENT = text("SELECT 1 FROM marketing_event_log WHERE id = :id FOR UPDATE")
_TAKE_ROW = text("UPDATE marketing_outbox SET error = error WHERE id = :id")
_STATES = text(
    "SELECT o.status::text, o.retry_count, e.status::text"
    " FROM marketing_outbox o, marketing_event_log e WHERE o.id = :row AND e.id = :event"
)


async def _crossed(db: Database, row: uuid.UUID, event: str) -> int:
    """The re-drive of `row` started while another transaction holds its event's
    log row, and that transaction then wanting the outbox row the re-drive holds."""
    async with db.engine.connect() as other:
        # PostgreSQL looks for a deadlock once per lock wait, `deadlock_timeout` after
        # it began, and aborts the session that finds one. The re-drive waits first,
        # with the database's REDRIVE_DEADLOCK: the cycle must close within
        # it (this test's next two steps) for the re-drive to find it; this session
        # looks much later, so it is never the one aborted.
        await other.execute(text("SET LOCAL deadlock_timeout = '60s'"))
        await other.execute(_TAKE_EVENT, {"id": event})
        pid = await other.scalar(text("SELECT pg_backend_pid()"))
        redrive = asyncio.create_task(rules.retry_failed(db, names=[f"{rules.NAME_PREFIX}{row}"]))
        try:
            await until_waiting_for(db.engine, pid, redrive, timeout_s=WAIT_S)
            assert not redrive.done(), "the re-drive did not wait for the event-log row"
            try:
                await other.execute(_TAKE_ROW, {"id": row})  # the cycle: the re-drive is aborted
            except DBAPIError as exc:
                pytest.fail(f"the cycle closed after the re-drive's deadlock check: {exc}")
            await other.commit()
            return await asyncio.wait_for(redrive, WAIT_S)
        finally:
            if not redrive.done():
                await other.rollback()
                redrive.cancel()
            await asyncio.gather(redrive, return_exceptions=True)


def test_a_redrive_that_deadlocks_is_run_again(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    row, event = uuid.uuid4(), f"ev-{uuid.uuid4().hex}"
    payload = bus_pb2.EventTracked(event_id=event, email="a@b.co", metric="m").SerializeToString()

    async def scenario(url: str) -> tuple[int, tuple[str, int, str]]:
        await admin_statement(url, f"ALTER DATABASE {make_url(url).database} {REDRIVE_DEADLOCK}")
        db = Database(url)
        try:
            async with db.transaction() as session:
                await session.execute(_FAILED_EVENT, {"id": event})
                await session.execute(
                    _FAILED_ROW, {"id": row, "kind": outbox.EVENT_TRACKED, "payload": payload}
                )
            retried = await _crossed(db, row, event)
            async with db.engine.connect() as conn:
                states = (await conn.execute(_STATES, {"row": row, "event": event})).one()
            return retried, tuple(states)
        finally:
            await db.close()

    with (
        caplog.at_level(logging.WARNING, logger="service.storage.database"),
        own_database(database_url, "retry_races") as url,
    ):
        retried, states = asyncio.run(scenario(url))

    assert retried == 1
    assert states == ("PENDING", 1, "PENDING")  # queued once, its event with it
    races = [r.getMessage() for r in caplog.records if "lost a race" in r.getMessage()]
    assert len(races) == 1 and "40P01" in races[0] and "_requeue" in races[0], races
