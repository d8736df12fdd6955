"""Writing outbox rows. Callers pass the session of the transaction that makes
the change, so the change and its outbox row commit (or roll back) together."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.database import after_commit
from service.storage.models import Outbox, OutboxStatus

# Called after any transaction that added outbox rows commits (the relay's wake-up).
_listeners: list[Callable[[], None]] = []


def on_commit(listener: Callable[[], None]) -> None:
    _listeners.append(listener)


def remove_on_commit(listener: Callable[[], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def notify_after_commit(session: AsyncSession) -> None:
    """Wake the relay once this transaction commits (for rows made PENDING again)."""
    after_commit(session, _notify)


def _notify() -> None:
    for listener in list(_listeners):
        listener()


class OutboxKind:
    """What a row asks the dispatcher to do at the provider."""

    CONTACT_UPSERTED = "contact.upserted"
    CONSENT_CHANGED = "consent.changed"
    NEWSLETTER_SUBSCRIBED = "newsletter.subscribed"
    UNSUBSCRIBED = "contact.unsubscribed"
    CONTACT_ERASED = "contact.erased"
    EVENT_TRACKED = "event.tracked"


async def enqueue(
    session: AsyncSession, *, contact_key: str, kind: str, payload: dict[str, Any], now: datetime
) -> None:
    await enqueue_many(session, [(contact_key, kind, payload)], now=now)


async def enqueue_many(
    session: AsyncSession, rows: Sequence[tuple[str, str, dict[str, Any]]], *, now: datetime
) -> None:
    if not rows:
        return
    after_commit(session, _notify)
    await session.execute(
        insert(Outbox),
        [
            {"contact_key": key, "kind": kind, "payload": payload, "created_at": now}
            for key, kind, payload in rows
        ],
    )


async def forget_person(session: AsyncSession, contact_key: str) -> None:
    """For erasure: work for the person that has not left yet, or that failed,
    is dropped (so nothing re-creates the profile at the provider after the
    erasure); work already on the bus keeps its row for the result, but not
    the person's data."""
    await session.execute(
        delete(Outbox).where(
            Outbox.contact_key == contact_key,
            Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.FAILED]),
        )
    )
    await session.execute(
        update(Outbox).where(Outbox.contact_key == contact_key).values(payload={"erased": True})
    )


async def prune_completed(session: AsyncSession, *, before: datetime) -> int:
    """Delete finished rows older than `before`; returns how many went."""
    result = await session.execute(
        delete(Outbox).where(Outbox.status == OutboxStatus.COMPLETED, Outbox.completed_at < before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
