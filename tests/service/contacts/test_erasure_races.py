"""Erasure beside the result recorder, and a transaction that loses a race run
again (Database.retried), against the real PostgreSQL.

The recorder settles a person's outbox row and then marks their contact synced,
in one transaction. Erasure once locked the contact first and their outbox rows
after: a result settled at that moment deadlocked with it, and DeleteContact
reached its caller as ABORTED."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from service.common.validation import email_key
from service.contacts import rules
from service.errors import AbortedError, NotFoundError
from tests.builders import upsert
from tests.harness import ServiceHarness, unique_email

NOW = datetime(2026, 12, 6, tzinfo=UTC)
LOCK_WAIT_S = 30  # how long the test waits for erasure to queue behind the recorder


async def _waiting_on_a_lock(conn: AsyncConnection, pid: int) -> bool:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> :pid AND wait_event_type = 'Lock'"
    )
    return bool(await conn.scalar(query, {"pid": pid}))


async def _erase_beside_the_recorder(harness: ServiceHarness, email: str, name: str) -> None:
    contact_id = name.removeprefix("contacts/")
    async with harness.db.engine.connect() as recorder, harness.db.engine.connect() as watcher:
        # The recorder's first statement: the person's outbox row settled.
        await recorder.execute(
            text("UPDATE marketing_outbox SET attempts = attempts + 1 WHERE contact_key = :key"),
            {"key": email_key(email)},
        )
        pid = await recorder.scalar(text("SELECT pg_backend_pid()"))
        erasure = asyncio.create_task(rules.delete_contact(harness.db, name=name, now=NOW))
        for _ in range(LOCK_WAIT_S * 20):
            if erasure.done() or await _waiting_on_a_lock(watcher, pid):
                break
            await asyncio.sleep(0.05)
        assert not erasure.done(), "erasure did not wait for the outbox row the recorder holds"
        # Its second: the contact marked synced. Erasure, waiting for the
        # outbox row, must not hold the contact meanwhile.
        try:
            await recorder.execute(
                text("SELECT 1 FROM marketing_contact WHERE id = :id FOR UPDATE NOWAIT"),
                {"id": contact_id},
            )
        except DBAPIError as exc:
            await recorder.rollback()
            erasure.cancel()
            pytest.fail(f"erasure held the contact while it waited for the outbox: {exc}")
        await recorder.execute(
            text("UPDATE marketing_contact SET last_sync_at = :now WHERE id = :id"),
            {"now": NOW, "id": contact_id},
        )
        await recorder.commit()
        await erasure


def test_erasure_takes_the_persons_work_before_their_contact(stub, harness: ServiceHarness) -> None:
    email = unique_email("erased-beside-recorder")
    name = stub.UpsertContact(upsert(email)).contact.name  # queues the contact's upsert
    assert harness.outbox_rows(email), "the upsert queued no outbox row to hold"

    harness.run(_erase_beside_the_recorder(harness, email, name))

    assert harness.scalar("SELECT count(*) FROM marketing_contact WHERE email = :e", e=email) == 0
    assert [row.kind for row in harness.outbox_rows(email)] == ["contact.erased"]


def test_erasing_a_contact_erased_meanwhile_is_not_found(harness: ServiceHarness) -> None:
    missing = f"contacts/{uuid.uuid4()}"
    with pytest.raises(NotFoundError):
        harness.run(rules.delete_contact(harness.db, name=missing, now=NOW))


class _Races:
    """Work that loses its race `losses` times, then writes a row."""

    def __init__(self, losses: int, marker: str) -> None:
        self.losses = losses
        self.marker = marker
        self.tries = 0

    async def __call__(self, session: AsyncSession) -> int:
        self.tries += 1
        # Written on every try: a try rolled back must leave nothing.
        await session.execute(
            text(
                "INSERT INTO marketing_erasure_log (email_sha256, contact_id, erased_at) "
                "VALUES (:key, gen_random_uuid(), :now)"
            ),
            {"key": self.marker, "now": NOW},
        )
        if self.tries <= self.losses:
            raise AbortedError(reason="CONCURRENT_UPDATE", description="lost a race")
        return self.tries


def _written(harness: ServiceHarness, marker: str) -> int:
    query = "SELECT count(*) FROM marketing_erasure_log WHERE email_sha256 = :k"
    return int(harness.scalar(query, k=marker))


def test_a_transaction_that_lost_a_race_is_run_again(harness: ServiceHarness) -> None:
    work = _Races(losses=2, marker=f"race-{uuid.uuid4().hex}")
    assert harness.run(harness.db.retried(work, attempts=3)) == 3
    assert _written(harness, work.marker) == 1, "the lost tries were rolled back"


def test_the_last_lost_race_reaches_the_caller(harness: ServiceHarness) -> None:
    work = _Races(losses=3, marker=f"race-{uuid.uuid4().hex}")
    with pytest.raises(AbortedError):
        harness.run(harness.db.retried(work, attempts=3))
    assert work.tries == 3
    assert _written(harness, work.marker) == 0


def test_other_errors_are_not_run_again(harness: ServiceHarness) -> None:
    tries = 0

    async def missing(session: AsyncSession) -> None:
        nonlocal tries
        tries += 1
        raise NotFoundError(resource_type="contact", resource_name="contacts/x")

    with pytest.raises(NotFoundError):
        harness.run(harness.db.retried(missing))
    assert tries == 1
