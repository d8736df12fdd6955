"""Waiting for the attribution worker the service runs (no sleeps of a set length)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from service.reports.attribution import attribute_pending
from service.storage.database import Database
from service.storage.models import AttributionPending
from service.workers.attribution_worker import DEFAULT_ATTRIBUTION_SETTINGS

_POLL_S = 0.02


async def settle_attribution(db: Database, timeout_s: float = 30.0) -> None:
    """Until nobody is queued: a person a worker has claimed stays visible to
    others until its transaction commits, so an empty queue means done."""
    async with asyncio.timeout(timeout_s):
        while True:
            async with db.transaction() as session:
                await attribute_pending(session, DEFAULT_ATTRIBUTION_SETTINGS.window, 1000)
            async with db.transaction() as session:
                if not await session.scalar(select(func.count()).select_from(AttributionPending)):
                    return
            await asyncio.sleep(_POLL_S)
