"""How many contacts were created when, for the dashboard, from the per-day
rollup the contact table's triggers keep (`marketing_contact_day`, migration
0013) rather than by counting a million rows on each call.

A range rarely starts or ends at midnight: a day it cuts is counted from the
contacts table (`ix_marketing_contact_created`, index only), unless the
day's first and last creation times show that all of its contacts, or none,
are in the range: then its rollup count is used as it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.models import Contact, ContactDay

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DayCount:
    contacts: int
    first: datetime  # bounds of the day's creation times (kept through deletions)
    last: datetime


class ContactDays:
    """Every day's count, read once per report."""

    def __init__(self, session: AsyncSession, days: dict[date, DayCount]) -> None:
        self._session = session
        self._days = days
        # Cut days counted in the table, by (lo, hi): the range's total and its
        # trend ask for the same edge days.
        self._counted: dict[tuple[datetime, datetime], int] = {}

    @classmethod
    async def read(cls, session: AsyncSession) -> ContactDays:
        rows = await session.execute(
            select(
                ContactDay.day,
                func.sum(ContactDay.contacts),
                func.min(ContactDay.first_created),
                func.max(ContactDay.last_created),
            ).group_by(ContactDay.day)
        )
        return cls(session, {day: DayCount(int(n), first, last) for day, n, first, last in rows})

    def total(self) -> int:
        return sum(d.contacts for d in self._days.values())

    async def created(self, start: datetime, end: datetime) -> int:
        """Contacts created in [start, end)."""
        counted = 0
        for day in self._days:
            counted += await self.created_on(day, start, end)
        return counted

    async def created_on(self, day: date, start: datetime, end: datetime) -> int:
        """Contacts created on `day` (UTC) and in [start, end)."""
        found = self._days.get(day)
        if found is None or found.contacts == 0:
            return 0
        day_start = datetime.combine(day, time(), UTC)
        lo, hi = max(start, day_start), min(end, day_start + DAY)
        if lo >= hi or found.last < lo or found.first >= hi:
            return 0
        if found.first >= lo and found.last < hi:
            return found.contacts
        if (lo, hi) not in self._counted:
            counted = await self._session.scalar(
                select(func.count()).where(Contact.created_at >= lo, Contact.created_at < hi)
            )
            self._counted[lo, hi] = int(counted or 0)
        return self._counted[lo, hi]
