"""Changed contacts wait in marketing_segment_pending until the refresher's
drain evaluates their dynamic segments: a change records its contact in its
own transaction, a drain takes a batch at once and records the lag, events
record their people only when a segment counts events, and no drain runs
while a new filter is evaluated as a whole (the change would meet neither),
while drains go on during a relative round, which marks what it moves for a
drain to judge again."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text, update

from service.contacts.rules import ContactFields, upsert_contact
from service.segments import filters as f
from service.segments import membership
from service.segments.rules import NewSegment, SegmentChanges, create_segment, update_segment
from service.storage.database import Database
from service.storage.models import (
    Contact,
    SegmentKind,
    SegmentListMember,
    SegmentMembership,
    SegmentPending,
)
from service.workers.repeat import backoff_s
from service.workers.segment_refresher import RefresherSettings, SegmentRefresher
from tests.harness import eventually, own_database

T0 = datetime(2026, 5, 1, tzinfo=UTC)
SKEW = timedelta(minutes=5)


@pytest.fixture(scope="module")
def drain_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "drain") as url:
        yield url


def _tier(tier: str) -> f.Node:
    return f.Condition(f.FieldSubject(f.Field.LOYALTY_TIER), f.Op.EQUALS, tier)


async def _pending(db: Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(SegmentPending)) or 0)


async def _members(db: Database, segment_id: str) -> set[str]:
    async with db.transaction() as session:
        rows = await session.scalars(
            select(Contact.email)
            .join(SegmentMembership, SegmentMembership.contact_id == Contact.id)
            .where(SegmentMembership.segment == segment_id)
        )
        return set(rows)


async def _waits_for_advisory_lock(db: Database) -> bool:
    """Whether some session of this database waits for an advisory lock."""
    async with db.transaction() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                "WHERE l.locktype = 'advisory' AND NOT l.granted "
                "AND d.datname = current_database()"
            )
        )
        return bool(waiting)


def _lag_count() -> float:
    return REGISTRY.get_sample_value("marketing_segment_membership_lag_seconds_count") or 0.0


def test_changes_wait_until_a_drain_evaluates_them_in_one_batch(drain_db: str) -> None:
    async def scenario() -> None:
        db = Database(drain_db)
        tier = f"tier-{uuid.uuid4().hex[:6]}"
        segment_id = f"drain-{uuid.uuid4().hex[:6]}"
        try:
            await create_segment(
                db, NewSegment(segment_id, segment_id, "", SegmentKind.DYNAMIC, _tier(tier)), now=T0
            )
            emails = [f"p{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(5)]
            for email in emails:
                fields = ContactFields(email=email, first_name="Ada", loyalty_tier=tier)
                await upsert_contact(db, fields, now=T0, skew=SKEW)
            assert await _members(db, segment_id) == set(), "no member before a drain"
            assert await _pending(db) == 5
            lags_before = _lag_count()
            later = T0 + timedelta(seconds=3)
            refresher = SegmentRefresher(db, lambda: later, RefresherSettings(drain_batch=3))
            assert await refresher.drain_once() == 3
            assert await refresher.drain_all() == 2
            assert await _members(db, segment_id) == set(emails)
            assert await _pending(db) == 0
            # Other harnesses' refreshers in this process observe lags too.
            assert _lag_count() - lags_before >= 5, "a lag per contact drained"
        finally:
            await db.close()

    asyncio.run(scenario())


def test_events_mark_their_people_only_when_a_segment_counts_events(drain_db: str) -> None:
    async def scenario() -> None:
        db = Database(drain_db)
        email = f"buyer-{uuid.uuid4().hex[:6]}@example.com"
        try:
            await upsert_contact(
                db, ContactFields(email=email, first_name="Ada"), now=T0, skew=SKEW
            )
            await SegmentRefresher(db, lambda: T0).drain_all()
            async with db.transaction() as session:
                await membership.mark_people(session, [(email, "placed_order")], T0)
            assert await _pending(db) == 0, "no segment counts events yet"
            orders = f.Condition(
                f.EventSubject("placed_order", None, (), f.Measure.COUNT),
                f.Op.GREATER_THAN_OR_EQUAL,
                1.0,
            )
            segment_id = f"buyers-{uuid.uuid4().hex[:6]}"
            new = NewSegment(segment_id, segment_id, "", SegmentKind.DYNAMIC, orders)
            await create_segment(db, new, now=T0)
            async with db.transaction() as session:
                viewed = [(email, "product_viewed")]
                await membership.mark_people(session, viewed, T0)
            assert await _pending(db) == 0, "no segment counts product views"
            async with db.transaction() as session:
                ordered = [(email, "placed_order"), ("nobody@example.com", "placed_order")]
                await membership.mark_people(session, ordered, T0)
            assert await _pending(db) == 1, "the person with a contact, once"
            await SegmentRefresher(db, lambda: T0).drain_all()
        finally:
            await db.close()

    asyncio.run(scenario())


def test_no_drain_runs_while_a_segment_is_evaluated_as_a_whole(drain_db: str) -> None:
    async def scenario() -> None:
        db = Database(drain_db)
        email = f"held-{uuid.uuid4().hex[:6]}@example.com"
        try:
            await upsert_contact(
                db, ContactFields(email=email, first_name="Ada"), now=T0, skew=SKEW
            )
            refresher = SegmentRefresher(db, lambda: T0)
            async with db.transaction() as session:
                await membership.hold_for_whole_evaluation(session, counts_events=False)
                draining = asyncio.create_task(refresher.drain_once())
                await eventually(lambda: _waits_for_advisory_lock(db))
                assert not draining.done(), "a drain ran during a whole evaluation"
            assert await draining >= 1
        finally:
            await db.close()

    asyncio.run(scenario())


def _recent_buyer(days: int) -> f.Node:
    return f.Condition(
        f.FieldSubject(f.Field.LAST_PURCHASE_TIME), f.Op.WITHIN_LAST, timedelta(days=days)
    )


async def _bought_at_t0(db: Database, email: str) -> uuid.UUID:
    """A contact whose last purchase was at T0; its id."""
    bought = ContactFields(email=email, first_name="Ada", last_purchase_time=T0)
    contact, _ = await upsert_contact(db, bought, now=T0, skew=SKEW)
    return contact.id


async def _recent_buyers_drained(db: Database, segment_id: str, list_id: str | None = None) -> None:
    """The segment of people who bought in the 30 days before now (optionally
    linked to `list_id`), created at T0, with every pending change drained."""
    new = NewSegment(segment_id, segment_id, "", SegmentKind.DYNAMIC, _recent_buyer(30), list_id)
    await create_segment(db, new, now=T0)
    await SegmentRefresher(db, lambda: T0).drain_all()


def test_drains_go_on_during_a_relative_round_which_marks_what_it_moved(drain_db: str) -> None:
    async def scenario() -> None:
        db = Database(drain_db)
        tag = uuid.uuid4().hex[:6]
        recent, other = f"recent-{tag}@example.com", f"other-{tag}@example.com"
        segment_id = f"recent-{tag}"
        try:
            bought = ContactFields(email=recent, first_name="Ada", last_purchase_time=T0)
            await upsert_contact(db, bought, now=T0, skew=SKEW)
            new = NewSegment(segment_id, segment_id, "", SegmentKind.DYNAMIC, _recent_buyer(30))
            await create_segment(db, new, now=T0)
            refresher = SegmentRefresher(db, lambda: T0)
            await refresher.drain_all()
            assert await _members(db, segment_id) == {recent}
            month_later = T0 + timedelta(days=31)
            async with db.transaction() as session:
                # The round is open (its purchase turned 31 days old: it left) ...
                assert await membership.refresh_relative(session, month_later) >= 1
                # ... and another person's change is drained meanwhile, unblocked.
                fields = ContactFields(email=other, first_name="Bo", last_purchase_time=month_later)
                await upsert_contact(db, fields, now=month_later, skew=SKEW)
                later = SegmentRefresher(db, lambda: month_later)
                assert await asyncio.wait_for(later.drain_once(), 30) == 1
            assert await _members(db, segment_id) == {other}
            # The person the round moved is judged again by the next drain.
            assert await _pending(db) == 1
            assert await later.drain_all() == 1
            assert await _members(db, segment_id) == {other}
        finally:
            await db.close()

    asyncio.run(scenario())


def test_a_failing_refresher_step_waits_longer_each_time_up_to_half_a_minute() -> None:
    waits = [backoff_s(n) for n in range(10)]
    assert waits[:4] == [0.0, 0.5, 1.0, 2.0]
    assert waits == sorted(waits) and waits[-1] == 30.0


def test_a_person_a_round_moves_leaves_the_provider_list_at_the_next_drain(drain_db: str) -> None:
    async def scenario() -> None:
        db = Database(drain_db)
        tag = uuid.uuid4().hex[:6]
        email, segment_id = f"listed-{tag}@example.com", f"listed-{tag}"
        try:
            contact = await _bought_at_t0(db, email)
            async with db.transaction() as session:  # emailable: the list's audience
                await session.execute(
                    update(Contact).where(Contact.id == contact).values(email_opt_in=True)
                )
            await _recent_buyers_drained(db, segment_id, f"L-{tag}")
            assert await _in_list(db, segment_id) == [True]
            month_later = T0 + timedelta(days=31)
            async with db.transaction() as session:
                await membership.refresh_relative(session, month_later)
            assert email not in await _members(db, segment_id)
            assert await _in_list(db, segment_id) == [True], "no whole list compared by a round"
            await SegmentRefresher(db, lambda: month_later).drain_all()
            assert await _in_list(db, segment_id) == [False]
        finally:
            await db.close()

    asyncio.run(scenario())


async def _in_list(db: Database, segment_id: str) -> list[bool]:
    async with db.transaction() as session:
        rows = await session.scalars(
            select(SegmentListMember.in_list).where(SegmentListMember.segment_id == segment_id)
        )
        return list(rows)


def test_the_wait_stays_half_a_minute_however_long_the_failures_go_on() -> None:
    assert backoff_s(100_000) == 30.0


def test_a_filter_change_waits_for_a_relative_round_and_then_succeeds(drain_db: str) -> None:
    async def scenario() -> None:
        db = Database(drain_db)
        tag = uuid.uuid4().hex[:6]
        email, segment_id = f"changing-{tag}@example.com", f"changing-{tag}"
        try:
            await _bought_at_t0(db, email)
            await _recent_buyers_drained(db, segment_id)
            month_later = T0 + timedelta(days=31)
            changes = SegmentChanges(("filter",), "", "", _recent_buyer(60))
            async with db.transaction() as session:
                # The round moves the person out and holds that row ...
                await membership.refresh_relative(session, month_later)
                changing = asyncio.create_task(
                    update_segment(
                        db, segment_id=segment_id, name="", changes=changes, now=month_later
                    )
                )
                await eventually(lambda: _waits_for_advisory_lock(db))
                assert not changing.done(), "a new filter was evaluated beside a round"
            # ... and the change goes ahead once it commits (no deadlock, no abort).
            await asyncio.wait_for(changing, 30)
            assert email in await _members(db, segment_id), "bought 31 days ago: in 60 days"
        finally:
            await db.close()

    asyncio.run(scenario())
