"""Erasure beside the service's other writers, and a transaction that loses a
race run again (Database.retried), against the real PostgreSQL.

The result recorder settles a person's outbox row and then marks their contact
synced, in one transaction. Erasure once locked the contact first and their
outbox rows after: a result settled at that moment deadlocked with it, and
DeleteContact reached its caller as ABORTED."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from service.common.validation import email_key
from service.contacts import rules
from service.errors import AbortedError, NotFoundError
from service.storage.database import after_commit
from tests.builders import upsert
from tests.harness import ServiceHarness, unique_email, until_waiting_for

NOW = datetime(2026, 12, 6, tzinfo=UTC)
WAIT_S = 30  # the most any step here waits for another (none takes long)


class Person:
    def __init__(self, harness: ServiceHarness) -> None:
        self.email = unique_email("erased")
        self.name = harness.stub.UpsertContact(upsert(self.email)).contact.name  # queues its upsert
        self.contact_id = self.name.removeprefix("contacts/")
        self.key = email_key(self.email)


@pytest.fixture
def person(harness: ServiceHarness) -> Person:
    queued = Person(harness)
    assert harness.outbox_rows(queued.email), "the upsert queued no outbox row"
    return queued


def _left_of(harness: ServiceHarness, person: Person) -> tuple[int, list[str]]:
    """Their contact rows (0 or 1), and the kinds of their outbox rows in order."""
    query = "SELECT count(*) FROM marketing_contact WHERE id = :id"
    contacts = int(harness.scalar(query, id=person.contact_id))
    return contacts, [row.kind for row in harness.outbox_rows(person.email)]


@asynccontextmanager
async def _erasure_blocked_by(
    harness: ServiceHarness, person: Person, holder: AsyncConnection
) -> AsyncIterator[asyncio.Task[None]]:
    """Erasure started, and waiting for a lock `holder` holds; cancelled (and
    its connection given back) should the test fail meanwhile."""
    pid = await holder.scalar(text("SELECT pg_backend_pid()"))
    erasure = asyncio.create_task(rules.delete_contact(harness.db, name=person.name, now=NOW))
    try:
        await until_waiting_for(harness.db.engine, pid, erasure, timeout_s=WAIT_S)
        assert not erasure.done(), "erasure did not wait for the lock held"
        yield erasure
    finally:
        if not erasure.done():  # the test failed: let go first, then stop it
            await holder.rollback()
            erasure.cancel()
        await asyncio.gather(erasure, return_exceptions=True)


async def _finished(erasure: asyncio.Task[None]) -> None:
    await asyncio.wait_for(asyncio.shield(erasure), WAIT_S)


_SETTLE_ROW = text("UPDATE marketing_outbox SET attempts = attempts + 1 WHERE contact_key = :key")
_MARK_SYNCED = text("UPDATE marketing_contact SET last_sync_at = :now WHERE id = :id")
_TAKE_CONTACT = text("SELECT 1 FROM marketing_contact WHERE id = :id FOR NO KEY UPDATE")
_TAKE_CONTACT_NOWAIT = text(
    "SELECT 1 FROM marketing_contact WHERE id = :id FOR NO KEY UPDATE NOWAIT"
)


async def _beside_the_recorder(harness: ServiceHarness, person: Person) -> None:
    async with harness.db.engine.connect() as recorder:
        # The recorder's first statement: the person's outbox row settled.
        await recorder.execute(_SETTLE_ROW, {"key": person.key})
        async with _erasure_blocked_by(harness, person, recorder) as erasure:
            # Its second: the contact marked synced. Erasure, waiting for the
            # outbox row, must not hold the contact meanwhile.
            try:
                await recorder.execute(_TAKE_CONTACT_NOWAIT, {"id": person.contact_id})
            except DBAPIError as exc:
                pytest.fail(f"erasure held the contact while it waited for the outbox: {exc}")
            await recorder.execute(_MARK_SYNCED, {"now": NOW, "id": person.contact_id})
            await recorder.commit()
            await _finished(erasure)


def test_erasure_takes_the_persons_rows_before_their_contact(
    harness: ServiceHarness, person: Person
) -> None:
    harness.run(_beside_the_recorder(harness, person))

    assert _left_of(harness, person) == (0, ["contact.erased"])


async def _erased_meanwhile(harness: ServiceHarness, person: Person) -> None:
    async with harness.db.engine.connect() as recorder:
        await recorder.execute(_SETTLE_ROW, {"key": person.key})
        async with _erasure_blocked_by(harness, person, recorder) as erasure:
            async with harness.db.engine.begin() as other:
                other_delete = text("DELETE FROM marketing_contact WHERE id = :id")
                await asyncio.wait_for(
                    other.execute(other_delete, {"id": person.contact_id}), WAIT_S
                )
            await recorder.commit()
            await _finished(erasure)


def test_a_contact_erased_meanwhile_is_not_found(harness: ServiceHarness, person: Person) -> None:
    with pytest.raises(NotFoundError):
        harness.run(_erased_meanwhile(harness, person))

    # Rolled back whole: what its first pass had taken is back.
    assert _left_of(harness, person) == (0, ["contact.upserted"])


_QUEUE_AGAIN = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status, attempts, retry_count)"
    " SELECT gen_random_uuid(), contact_key, kind, payload, 'PENDING', 0, 0"
    " FROM marketing_outbox WHERE contact_key = :key LIMIT 1"
)


async def _written_while_waiting(harness: ServiceHarness, person: Person) -> None:
    async with harness.db.engine.connect() as writer:
        # A writer of the person's changes (an upsert, a consent call) holds
        # their contact, and queues a change while erasure waits for it.
        await writer.execute(_TAKE_CONTACT, {"id": person.contact_id})
        async with _erasure_blocked_by(harness, person, writer) as erasure:
            await writer.execute(_QUEUE_AGAIN, {"key": person.key})
            await writer.commit()
            await _finished(erasure)


def test_what_was_queued_while_erasure_waited_goes_too(
    harness: ServiceHarness,
    person: Person,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # One try throughout, however slow the machine: the second pass, not a
    # second try's first, is what must find the row.
    monkeypatch.setattr(rules, "CONTACT_LOCK_WAIT", f"{WAIT_S}s")
    with caplog.at_level(logging.WARNING, logger="service.storage.database"):
        harness.run(_written_while_waiting(harness, person))

    assert "lost a race" not in caplog.text
    assert _left_of(harness, person) == (0, ["contact.erased"])


async def _held_throughout(harness: ServiceHarness, person: Person) -> None:
    async with harness.db.engine.connect() as writer:
        await writer.execute(_TAKE_CONTACT, {"id": person.contact_id})
        erasure = rules.delete_contact(harness.db, name=person.name, now=NOW)
        try:
            await asyncio.wait_for(erasure, WAIT_S)
        finally:
            await writer.rollback()


def test_erasure_gives_up_a_contact_held_for_long(
    harness: ServiceHarness,
    person: Person,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each try waits CONTACT_LOCK_WAIT for the contact (holding the person's
    other rows, which the relay may want), then is run again; the last try's
    abort reaches the caller, and nothing was erased."""
    monkeypatch.setattr(rules, "CONTACT_LOCK_WAIT", "200ms")
    with (
        caplog.at_level(logging.WARNING, logger="service.storage.database"),
        pytest.raises(AbortedError),
    ):
        harness.run(_held_throughout(harness, person))

    assert caplog.text.count("_erase lost a race (SQLSTATE 55P03") == 2  # tries 2 and 3

    assert _left_of(harness, person) == (1, ["contact.upserted"]), "nothing was erased"


@pytest.fixture
def scratch(harness: ServiceHarness) -> Iterator[str]:
    table = f"retried_scratch_{uuid.uuid4().hex[:8]}"
    harness.sql(f"CREATE TABLE {table} (try integer)")
    yield table
    harness.sql(f"DROP TABLE {table}")


class _Races:
    """Work that writes a row and asks for a callback after commit on every try,
    then loses its race on the first `losses` tries."""

    def __init__(self, table: str, losses: int, lose: Callable[[AsyncSession], Awaitable[Any]]):
        self.table = table
        self.losses = losses
        self.lose = lose
        self.tries = 0
        self.committed: list[int] = []

    async def __call__(self, session: AsyncSession) -> int:
        self.tries += 1
        attempt = self.tries
        await session.execute(text(f"INSERT INTO {self.table} VALUES (:n)"), {"n": attempt})
        after_commit(session, lambda: self.committed.append(attempt))
        if attempt <= self.losses:
            await self.lose(session)
        return attempt


async def _abort(session: AsyncSession) -> None:
    raise AbortedError(reason="CONCURRENT_UPDATE", description="lost a race")


def _rows(harness: ServiceHarness, table: str) -> list[int]:
    return [row[0] for row in harness.sql(f"SELECT try FROM {table} ORDER BY try")]


def test_a_transaction_that_lost_a_race_is_run_again(harness: ServiceHarness, scratch: str) -> None:
    work = _Races(scratch, losses=2, lose=_abort)
    assert harness.run(harness.db.retried(work, attempts=3)) == 3
    assert _rows(harness, scratch) == [3], "the lost tries were rolled back"
    assert work.committed == [3], "a lost try's after-commit callbacks never run"


def test_the_last_lost_race_reaches_the_caller(harness: ServiceHarness, scratch: str) -> None:
    work = _Races(scratch, losses=3, lose=_abort)
    with pytest.raises(AbortedError):
        harness.run(harness.db.retried(work, attempts=3))
    assert work.tries == 3
    assert _rows(harness, scratch) == []
    assert work.committed == []


async def _lock_refused_once(harness: ServiceHarness, table: str) -> _Races:
    """PostgreSQL's own abort: a row another connection holds, asked for with
    NOWAIT (lock_not_available), let go after the first try lost."""
    async with harness.db.engine.connect() as holder:
        await holder.execute(text(f"INSERT INTO {table} VALUES (0)"))
        await holder.commit()
        await holder.execute(text(f"SELECT 1 FROM {table} WHERE try = 0 FOR UPDATE"))

        async def refused(session: AsyncSession) -> None:
            await session.execute(text(f"SELECT 1 FROM {table} WHERE try = 0 FOR UPDATE NOWAIT"))
            raise AssertionError("the row was held: NOWAIT should have refused it")

        async def let_go_then_lose(session: AsyncSession) -> None:
            try:
                await refused(session)
            finally:
                await holder.rollback()

        work = _Races(table, losses=1, lose=let_go_then_lose)
        await harness.db.retried(work, attempts=2)
        return work


def test_a_lock_postgresql_refused_is_asked_for_again(
    harness: ServiceHarness, scratch: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="service.storage.database"):
        work = harness.run(_lock_refused_once(harness, scratch))
    assert work.tries == 2
    assert _rows(harness, scratch) == [0, 2]
    assert "_Races lost a race (SQLSTATE 55P03" in caplog.text, "the retry names work and cause"


def test_other_errors_are_not_run_again(harness: ServiceHarness) -> None:
    tries = 0

    async def missing(session: AsyncSession) -> None:
        nonlocal tries
        tries += 1
        raise NotFoundError(resource_type="contact", resource_name="contacts/x")

    with pytest.raises(NotFoundError):
        harness.run(harness.db.retried(missing))
    assert tries == 1
