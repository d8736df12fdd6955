"""How a decision writes its enrolments: a few inserted, many copied, each with
every field it was decided with. And two decisions enrolling one person at once,
each before the other commits (callers serialise a person's decisions; `enrol`
itself must still hold): the database admits one running enrolment, and the
decision that loses records that person's attempt as refused (already
enrolled) and tells the provider nothing of it, whether its enrolments are
inserted or copied (the copy then conflicts as a whole, and the others are
still enrolled)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from service.flows import enrolments as enrolments_module
from service.flows.definitions import TriggerKind
from service.flows.enrolments import COPIED_FROM, Candidate, Cause, Decision, enrol
from service.flows.triggers import load_flows
from service.storage.bulk import copy_new_rows
from service.storage.database import Database
from tests.harness import eventually, own_database
from tests.service.flows.engine import BEGUN, enrolments, outbox_rows, register

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
_WAITING_ON_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


@pytest.fixture(scope="module")
def race_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "race") as url:
        yield url


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each COPY of enrolments answered (True: copied), in order."""
    answered: list[bool] = []

    async def recorded(*args: Any) -> bool:
        answered.append(await copy_new_rows(*args))
        return answered[-1]

    monkeypatch.setattr(enrolments_module, "copy_new_rows", recorded)
    return answered


async def _person(db: Database, label: str) -> tuple[uuid.UUID, str]:
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    return await register(db, email, T0, consent=False), email  # no welcome of its own


def _candidate(person: tuple[uuid.UUID, str], ref: str) -> Candidate:
    contact_id, email = person
    return Candidate(contact_id, email, False, True, ref, Cause(TriggerKind.EVENT, ref, T0))


@pytest.mark.parametrize("others", [0, COPIED_FROM - 1], ids=["inserted", "copied"])
def test_the_decision_that_loses_a_race_refuses_that_person_and_sends_nothing_of_it(
    race_db: str, copies: list[bool], others: int
) -> None:
    async def go() -> tuple[Decision, list[Decision]]:
        db = Database(race_db)
        try:
            tag = uuid.uuid4().hex[:8]  # the triggers of this run's decisions
            shared = await _person(db, "race")
            rest = [await _person(db, "other") for _ in range(others)]
            async with db.transaction() as session:
                welcome = next(f for f in await load_flows(session) if f.id == "welcome")
            first_decided, release = asyncio.Event(), asyncio.Event()

            async def first() -> Decision:
                async with db.transaction() as session:
                    [decision] = await enrol(
                        session, welcome, [_candidate(shared, f"race:a:{tag}")], T0
                    )
                    first_decided.set()
                    await release.wait()
                return decision

            async def second() -> list[Decision]:
                await first_decided.wait()
                batch = [_candidate(p, f"race:b:{p[1]}") for p in [shared, *rest]]
                async with db.transaction() as session:
                    return await enrol(session, welcome, batch, T0)

            async def waiting_on_a_lock() -> int:
                async with db.transaction() as session:
                    return int(await session.scalar(_WAITING_ON_A_LOCK) or 0)

            async def commit_first_once_second_waits() -> None:
                await first_decided.wait()
                await eventually(waiting_on_a_lock)
                release.set()

            a, b, _ = await asyncio.gather(first(), second(), commit_first_once_second_waits())
            stored = [
                (e.trigger_ref, e.state, e.rejection_reason)
                for e in await enrolments(db, shared[1], "welcome")
                if e.trigger_ref.startswith("race:")
            ]
            assert sorted(stored) == [
                (f"race:a:{tag}", "ACTIVE", None),
                (f"race:b:{shared[1]}", "REJECTED", "already_enrolled"),
            ]
            begun = await outbox_rows(db, shared[1], BEGUN)
            assert [row.payload.enrolment_id for row in begun] == [str(a.enrolment_id)]
            for _, email in rest:
                [other] = [
                    e
                    for e in await enrolments(db, email, "welcome")
                    if e.trigger_ref.startswith("race:")
                ]
                assert (other.state, len(await outbox_rows(db, email, BEGUN))) == ("ACTIVE", 1)
            return a, b
        finally:
            await db.close()

    a, b = asyncio.run(go())

    assert a.enrolled and a.reason is None
    refused = [d for d in b if not d.enrolled]
    assert [(d.contact_id, d.reason) for d in refused] == [(a.contact_id, "already_enrolled")]
    assert len(b) == others + 1
    assert copies == ([] if others == 0 else [False]), "copied, refused as a whole"


def test_copied_enrolments_keep_every_field_they_were_decided_with(
    race_db: str, copies: list[bool]
) -> None:
    async def go() -> list[tuple[Any, ...]]:
        db = Database(race_db)
        try:
            people = [await _person(db, "copied") for _ in range(COPIED_FROM)]
            async with db.transaction() as session:
                flow = next(f for f in await load_flows(session) if f.id == "post-purchase")
                order = {"order": {"order_id": "o-1", "lines": [{"sku": "mug", "price": 9.5}]}}
                batch = [
                    Candidate(contact_id, email, False, True, f"copied:{email}", cause, order)
                    for contact_id, email in people
                    for cause in [Cause(TriggerKind.EVENT, f"ev-{email}", T0)]
                ]
                decided = await enrol(session, flow, batch, T0)
            assert all(d.enrolled for d in decided)
            found = []
            for contact_id, email in people:
                [e] = await enrolments(db, email, "post-purchase")
                [begun] = await outbox_rows(db, email, BEGUN)
                found.append(
                    (
                        e.contact_id == contact_id,
                        e.trigger_ref == f"copied:{email}",
                        e.cause_ref == f"ev-{email}",  # where the context is kept
                        *(e.state, e.entry_key, e.cause_kind, e.cause_time),
                        orjson.loads(begun.payload.context_json),  # the message's, not kept
                        *(e.created_at, e.ended_at, e.exit_reason, e.rejection_reason),
                    )
                )
            return found
        finally:
            await db.close()

    found = asyncio.run(go())

    assert copies == [True]
    order = {"order": {"order_id": "o-1", "lines": [{"sku": "mug", "price": 9.5}]}}
    assert (
        found
        == [
            (
                True,
                True,
                True,
                "ACTIVE",
                "o-1",
                TriggerKind.EVENT.value,
                T0,
                order,
                T0,
                None,
                None,
                None,
            )
        ]
        * COPIED_FROM
    )
