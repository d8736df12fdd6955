"""Waiting for the attribution worker the service runs (polled, no sleeps of a set length)."""

from __future__ import annotations

from sqlalchemy import func, select

from service.reports.attribution import attribute_pending
from service.storage.database import Database
from service.storage.models import AttributionPending
from service.workers.attribution_worker import DEFAULT_ATTRIBUTION_SETTINGS
from tests.harness import eventually


async def settle_attribution(db: Database) -> None:
    """Until nothing is queued: an entry a worker has claimed stays visible to
    others until its transaction commits, so an empty queue means done."""

    async def drained() -> bool:
        async with db.transaction() as session:
            await attribute_pending(session, DEFAULT_ATTRIBUTION_SETTINGS.window, 1000)
        async with db.transaction() as session:
            queued = await session.scalar(select(func.count()).select_from(AttributionPending))
        return not queued

    await eventually(drained)
