"""Operational view of the delivery queue.

pending    outbox rows not yet on the bus
in_flight  on the bus, not yet acknowledged by the provider: outbox rows
           IN_FLIGHT plus logged events still PENDING (events are tracked
           in the event log once on the bus), less those events whose
           outbox row is itself still pending (already counted there)
failed     outbox rows FAILED, waiting for manual review

The oldest pending row's age is the processing lag; the oldest failed row's
(since it failed: its completed_at, else its created_at) tells how long a
dead letter has waited for review.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text

from service.deliveries.outbox import EVENT_TRACKED
from service.storage.database import Database

_STATS = text(
    """
    SELECT
      (SELECT count(*) FROM marketing_outbox WHERE status = 'PENDING') AS pending,
      (SELECT count(*) FROM marketing_outbox WHERE status = 'IN_FLIGHT') AS outbox_in_flight,
      (SELECT count(*) FROM marketing_event_log WHERE status IN ('PENDING', 'PROCESSING'))
        AS events_open,
      (SELECT count(*) FROM marketing_outbox WHERE status = 'PENDING' AND kind = :event)
        AS events_unpublished,
      (SELECT count(*) FROM marketing_outbox WHERE status = 'FAILED') AS failed,
      (SELECT min(created_at) FROM marketing_outbox WHERE status = 'PENDING') AS oldest,
      (SELECT min(coalesce(completed_at, created_at)) FROM marketing_outbox
        WHERE status = 'FAILED') AS oldest_failed
    """
)


@dataclass(frozen=True)
class QueueStats:
    pending: int
    in_flight: int
    failed: int
    oldest_pending_age: timedelta
    oldest_failed_age: timedelta


def _age(since: datetime | None, now: datetime) -> timedelta:
    return max(now - since, timedelta(0)) if since is not None else timedelta(0)


async def queue_stats(db: Database, *, now: datetime) -> QueueStats:
    async with db.transaction() as session:
        row = (await session.execute(_STATS, {"event": EVENT_TRACKED})).one()
    in_flight = row.outbox_in_flight + max(row.events_open - row.events_unpublished, 0)
    return QueueStats(
        pending=row.pending,
        in_flight=in_flight,
        failed=row.failed,
        oldest_pending_age=_age(row.oldest, now),
        oldest_failed_age=_age(row.oldest_failed, now),
    )
