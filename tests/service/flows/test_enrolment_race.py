"""Two decisions enrolling one person at once, each before the other commits
(callers serialise a person's decisions; `enrol` itself must still hold): the
database admits one running enrolment, and the decision that loses records
its attempt as refused (already enrolled) and tells the provider nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from service.flows.definitions import TriggerKind
from service.flows.enrolments import Candidate, Cause, Decision, enrol
from service.flows.triggers import load_flows
from service.storage.database import Database
from tests.harness import own_database
from tests.service.flows.engine import BEGUN, enrolments, outbox_rows, register

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_WAITING_ON_A_ROW = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@pytest.fixture(scope="module")
def race_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "race") as url:
        yield url


def test_the_decision_that_loses_a_race_records_a_refusal_and_sends_nothing(
    race_db: str,
) -> None:
    async def go() -> tuple[Decision, Decision]:
        db = Database(race_db)
        try:
            email = f"race-{uuid.uuid4().hex[:8]}@example.com"
            contact_id = await register(db, email, T0, consent=False)  # no welcome of its own
            async with db.transaction() as session:
                welcome = next(f for f in await load_flows(session) if f.id == "welcome")

            def candidate(ref: str) -> Candidate:
                cause = Cause(TriggerKind.EVENT, ref, T0)
                return Candidate(contact_id, email, False, True, f"race:{ref}", cause)

            first_decided = asyncio.Event()
            release = asyncio.Event()

            async def first() -> Decision:
                async with db.transaction() as session:
                    [decision] = await enrol(session, welcome, [candidate("a")], T0)
                    first_decided.set()
                    await release.wait()
                return decision

            async def second() -> Decision:
                await first_decided.wait()
                async with db.transaction() as session:
                    [decision] = await enrol(session, welcome, [candidate("b")], T0)
                return decision

            async def commit_first_once_second_waits() -> None:
                await first_decided.wait()
                async with asyncio.timeout(30):
                    while True:
                        async with db.transaction() as session:
                            if await session.scalar(_WAITING_ON_A_ROW):
                                break
                        await asyncio.sleep(0.02)
                release.set()

            a, b, _ = await asyncio.gather(first(), second(), commit_first_once_second_waits())
            stored = [
                (e.trigger_ref, e.state, e.rejection_reason)
                for e in await enrolments(db, email, "welcome")
                if e.trigger_ref.startswith("race:")
            ]
            assert sorted(stored) == [
                ("race:a", "ACTIVE", None),
                ("race:b", "REJECTED", "already_enrolled"),
            ]
            begun = await outbox_rows(db, email, BEGUN)
            assert [row.payload.enrolment_id for row in begun] == [str(a.enrolment_id)]
            return a, b
        finally:
            await db.close()

    a, b = asyncio.run(go())

    assert a.enrolled and a.reason is None
    assert not b.enrolled and b.reason == "already_enrolled"
