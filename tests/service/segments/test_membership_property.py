"""Property 10 with an injected clock: a contact whose attributes change is in
exactly the dynamic segments whose filters they match once the refresher
drains the change (its drain loop waits MARKETING_SEGMENT_DRAIN_POLL_S, 10 s
at most, between batches), and a contact who crosses a relative window
("bought in the last 90 days") with no change of their own joins or leaves in
the next refresher round (at most MARKETING_SEGMENT_REFRESH_S, 60 s by
default, 600 s at most): both within the property's 10 minutes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from service.contacts.rules import ContactFields, upsert_contact
from service.segments import filters as f
from service.segments.rules import NewSegment, create_segment
from service.settings import ServiceSettings
from service.storage.database import Database
from service.storage.models import Contact, SegmentChange, SegmentKind, SegmentMembership
from service.workers.segment_refresher import SegmentRefresher
from tests.harness import own_database
from tests.service.segments.evaluator import Person, matches

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TEN_MINUTES = timedelta(minutes=10)
FILTERS: dict[str, f.Node] = {
    "gold": f.Condition(f.FieldSubject(f.Field.LOYALTY_TIER), f.Op.EQUALS, "gold"),
    "regular": f.Group(
        True,
        (
            f.Condition(f.FieldSubject(f.Field.ORDER_COUNT), f.Op.GREATER_THAN_OR_EQUAL, 3.0),
            f.Condition(f.FieldSubject(f.Field.LOYALTY_TIER), f.Op.NOT_EQUALS, "gold"),
        ),
    ),
    "recent-buyer": f.Condition(
        f.FieldSubject(f.Field.LAST_PURCHASE_TIME), f.Op.WITHIN_LAST, timedelta(days=90)
    ),
}

upserts = st.tuples(
    st.just("upsert"),
    st.integers(0, 2),  # which of the example's contacts
    st.sampled_from(["gold", "silver", "bronze"]),
    st.integers(0, 6),  # order count
    st.integers(0, 200),  # days before the step that they last bought
)
advances = st.tuples(st.just("advance"), st.integers(1, 120 * 24 * 60))  # minutes
steps = st.lists(st.one_of(upserts, advances), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def membership_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "membership") as url:

        async def segments() -> None:
            db = Database(url)
            for segment_id, node in FILTERS.items():
                new = NewSegment(segment_id, segment_id, "", SegmentKind.DYNAMIC, node)
                await create_segment(db, new, now=T0)
            await db.close()

        asyncio.run(segments())
        yield url


def test_membership_follows_each_change_and_the_passing_of_time(membership_db: str) -> None:
    # **Feature: marketing-automation, Property 10: Segment membership updates**
    assert _most("segment_refresh_s") <= TEN_MINUTES.total_seconds()
    assert _most("segment_drain_poll_s") <= TEN_MINUTES.total_seconds()

    @settings(max_examples=100, deadline=None)
    @given(steps)
    def follows(drawn: list[tuple[object, ...]]) -> None:
        asyncio.run(_scenario(membership_db, drawn))

    follows()


def _most(setting: str) -> float:
    field = ServiceSettings.model_fields[setting]
    return float(next(m.le for m in field.metadata if hasattr(m, "le")))


async def _scenario(url: str, drawn: list[tuple[object, ...]]) -> None:
    db = Database(url)
    tag = uuid.uuid4().hex[:8]
    emails = [f"p{i}-{tag}@example.com" for i in range(3)]
    people: dict[str, Person] = {}
    now = T0
    try:
        for step in drawn:
            if step[0] == "advance":
                assert isinstance(step[1], int)
                now += timedelta(minutes=step[1])
                await SegmentRefresher(db, _fixed(now)).refresh_once()
            else:
                _, who, tier, orders, days = step
                assert isinstance(who, int) and isinstance(orders, int) and isinstance(days, int)
                email = emails[who]
                bought = now - timedelta(days=days)
                fields = ContactFields(
                    email=email,
                    first_name="Ada",
                    loyalty_tier=str(tier),
                    order_count=orders,
                    last_purchase_time=bought,
                )
                await upsert_contact(db, fields, now=now, skew=timedelta(minutes=5))
                await SegmentRefresher(db, _fixed(now)).drain_all()
                people[email] = Person(
                    email,
                    {"loyalty_tier": tier, "order_count": orders, "last_purchase_time": bought},
                    {},
                    {},
                    False,
                    set(),
                )
            await _check(db, people, now)
    finally:
        await db.close()


def _fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at


async def _check(db: Database, people: dict[str, Person], now: datetime) -> None:
    async with db.transaction() as session:
        rows = await session.execute(
            select(Contact.email, SegmentMembership.segment)
            .join(SegmentMembership, SegmentMembership.contact_id == Contact.id)
            .where(Contact.email.in_(list(people)))
        )
        held = {(email, segment) for email, segment in rows}
        late = await session.scalar(
            select(SegmentChange.id)
            .join(Contact, Contact.id == SegmentChange.contact_id)
            .where(Contact.email.in_(list(people)), SegmentChange.changed_at > now + TEN_MINUTES)
        )
    expected = {
        (email, segment_id)
        for email, person in people.items()
        for segment_id, node in FILTERS.items()
        if matches(node, person, now)
    }
    assert held == expected
    assert late is None
