"""The dashboard's contact counts from the per-day rollup (migration 0013's
triggers) agree with counting the contact table itself, whatever the days,
the ranges and the deletions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select

from service.reports.contact_days import DAY, ContactDays
from service.storage.database import Database
from service.storage.models import Contact

BASE = datetime(2026, 3, 1, tzinfo=UTC)
# Minutes within a few days, so that days hold several contacts and ranges cut them.
minutes = st.integers(0, 5 * 24 * 60)


async def _counts(db: Database, start: datetime, end: datetime) -> tuple[int, int, int]:
    """(total, in range) from the rollup, and in range counted in the table."""
    async with db.transaction() as session:
        days = await ContactDays.read(session)
        counted = await session.scalar(
            select(func.count()).where(Contact.created_at >= start, Contact.created_at < end)
        )
        total = await session.scalar(select(func.count()).select_from(Contact))
        assert days.total() == total
        return total, await days.created(start, end), int(counted or 0)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    created=st.lists(minutes, min_size=0, max_size=12),
    removed=st.sets(st.integers(0, 11)),
    ranges=st.lists(st.tuples(minutes, st.integers(1, 3 * 24 * 60)), min_size=1, max_size=4),
)
def test_counts_by_day_agree_with_the_table(loop, db, created, removed, ranges) -> None:
    async def run() -> None:
        async with db.transaction() as session:
            rows = [
                Contact(
                    email=f"{uuid.uuid4().hex}@days.example.com",
                    created_at=BASE + timedelta(minutes=m),
                )
                for m in created
            ]
            session.add_all(rows)
        gone = [row.id for index, row in enumerate(rows) if index in removed]
        if gone:  # as erasure deletes them
            async with db.transaction() as session:
                await session.execute(delete(Contact).where(Contact.id.in_(gone)))
        for start_minute, length in ranges:
            start = BASE + timedelta(minutes=start_minute)
            _, from_days, from_table = await _counts(db, start, start + timedelta(minutes=length))
            assert from_days == from_table

    loop.run_until_complete(run())


def test_a_day_wholly_in_the_range_is_not_counted_in_the_table(loop, db) -> None:
    day = datetime(2025, 1, 10, tzinfo=UTC)
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    async def run() -> tuple[int, int, int]:
        async with db.transaction() as session:
            session.add_all(
                Contact(email=f"{uuid.uuid4().hex}@days.example.com", created_at=at)
                for at in (day + timedelta(hours=h) for h in (1, 5, 23))
            )
        async with db.transaction() as session:
            days = await ContactDays.read(session)
            event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
            try:
                whole = await days.created_on(day.date(), day - DAY, day + 2 * DAY)
                after_whole = len(statements)
                cut = await days.created_on(day.date(), day + timedelta(hours=2), day + 2 * DAY)
            finally:
                event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
            return whole, cut, after_whole

    whole, cut, after_whole = loop.run_until_complete(run())
    assert (whole, cut) == (3, 2)
    assert after_whole == 0  # the rollup's bounds said: all of the day
    assert len(statements) == 1  # a cut day: counted in the table
