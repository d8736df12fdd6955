"""Writing the event log: by the RPC when the bus is unreachable (with an outbox
row), and by the service's event-log writer when events came over the bus."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage import outbox
from service.storage.database import Database
from service.storage.models import Contact, ErasureLog, EventLog
from service.storage.outbox import OutboxKind


@dataclass(frozen=True)
class EventRecord:
    """An accepted event, as stored and as carried on the bus."""

    event_id: str
    email: str  # normalised
    contact_key: str
    metric: str
    payload: dict[str, Any]
    occurred_at: datetime

    def delivery_payload(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "metric": self.metric,
            "email": self.email,
            "occur_time": self.occurred_at.isoformat(),
            "properties": self.payload,
        }

    @classmethod
    def from_delivery_payload(cls, contact_key: str, data: dict[str, Any]) -> EventRecord:
        return cls(
            event_id=data["event_id"],
            email=data["email"],
            contact_key=contact_key,
            metric=data["metric"],
            payload=data["properties"],
            occurred_at=datetime.fromisoformat(data["occur_time"]),
        )


async def insert_log_rows(
    session: AsyncSession, records: list[EventRecord], now: datetime
) -> set[str]:
    """Insert event-log rows linked to known contacts; returns the ids that
    were new (a known id is left as it is)."""
    if not records:
        return set()
    emails = {r.email for r in records}
    contact_ids: dict[str, uuid.UUID] = dict(
        (
            await session.execute(
                select(Contact.email, Contact.id).where(Contact.email.in_(emails))
            )
        ).all()
    )
    rows = [_row(r, contact_ids.get(r.email), now) for r in records]
    inserted = await session.scalars(
        pg_insert(EventLog).values(rows).on_conflict_do_nothing().returning(EventLog.id)
    )
    return set(inserted)


def _row(r: EventRecord, contact_id: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    return {
        "id": r.event_id,
        "contact_id": contact_id,
        "contact_key": r.contact_key,
        "type": r.metric,
        "data": {"email": r.email, "payload": r.payload},
        "occurred_at": r.occurred_at,
        "created_at": now,
        "updated_at": now,
    }


async def erased_after(
    session: AsyncSession, records: list[EventRecord], accepted_at: dict[str, datetime]
) -> set[str]:
    """Ids of events whose person was erased after the event was accepted:
    such events must not be written back (they arrived late over the bus)."""
    keys = {r.contact_key for r in records}
    latest = dict(
        (
            await session.execute(
                select(ErasureLog.email_sha256, func.max(ErasureLog.erased_at))
                .where(ErasureLog.email_sha256.in_(keys))
                .group_by(ErasureLog.email_sha256)
            )
        ).all()
    )
    return {
        r.event_id
        for r in records
        if r.contact_key in latest and latest[r.contact_key] >= accepted_at[r.event_id]
    }


class PostgresEventSink:
    """Events accepted straight into PostgreSQL: event log and outbox row commit
    together, and the relay publishes them when the bus is reachable."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def accept(self, records: list[EventRecord], now: datetime) -> set[str]:
        async with self._db.transaction() as session:
            inserted = await insert_log_rows(session, records, now)
            await outbox.enqueue_many(
                session,
                [
                    (r.contact_key, OutboxKind.EVENT_TRACKED, r.delivery_payload())
                    for r in records
                    if r.event_id in inserted
                ],
                now=now,
            )
        return inserted
