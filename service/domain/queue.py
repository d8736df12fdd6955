"""Operational view of the delivery queue (the outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from service.storage.database import Database
from service.storage.models import Outbox, OutboxStatus


@dataclass(frozen=True)
class QueueStats:
    pending: int
    in_flight: int
    failed: int
    oldest_pending_age: timedelta


async def queue_stats(db: Database, *, now: datetime) -> QueueStats:
    async with db.transaction() as session:
        counts = dict(
            (
                await session.execute(
                    select(Outbox.status, func.count())
                    .where(Outbox.status != OutboxStatus.COMPLETED)
                    .group_by(Outbox.status)
                )
            ).all()
        )
        oldest = await session.scalar(
            select(func.min(Outbox.created_at)).where(Outbox.status == OutboxStatus.PENDING)
        )
    age = max(now - oldest, timedelta(0)) if oldest is not None else timedelta(0)
    return QueueStats(
        pending=counts.get(OutboxStatus.PENDING, 0),
        in_flight=counts.get(OutboxStatus.IN_FLIGHT, 0),
        failed=counts.get(OutboxStatus.FAILED, 0),
        oldest_pending_age=age,
    )
