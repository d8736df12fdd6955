"""Failed deliveries: the manual-review queue (outbox rows in FAILED)."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.deliveries import outbox
from service.errors import NotFoundError, Violations
from service.storage.database import Database
from service.storage.models import Outbox, OutboxStatus

NAME_PREFIX = "failedDeliveries/"
PAGES = Paging(scope="failedDeliveries", key=(KeyKind.ID,))  # in outbox order

_EVENTS_BACK_TO_PENDING = text(
    "UPDATE marketing_event_log SET status = 'PENDING', error = NULL "
    "WHERE id = ANY(:ids) AND status = 'FAILED'"
)


@dataclass(frozen=True)
class FailedDelivery:
    """A delivery the provider did not take, waiting for manual review."""

    id: uuid.UUID
    kind: str
    event_id: str  # the tracked event's id; "" for other kinds
    error: str | None
    attempts: int  # provider attempts of the last delivery
    retry_count: int  # manual re-drives so far
    created_at: datetime
    failed_at: datetime | None


@dataclass(frozen=True)
class FailedPage:
    failed: list[FailedDelivery]
    next_page_token: str


def failed_delivery_name(failed: FailedDelivery) -> str:
    return f"{NAME_PREFIX}{failed.id}"


def _view(row: Outbox) -> FailedDelivery:
    return FailedDelivery(
        id=row.id,
        kind=row.kind,
        event_id=outbox.event_id(row.kind, row.payload),
        error=row.error,
        attempts=row.attempts,
        retry_count=row.retry_count,
        created_at=row.created_at,
        failed_at=row.completed_at,
    )


async def list_failed(
    db: Database, tokens: PageTokens, *, page_size: int, page_token: str
) -> FailedPage:
    v = Violations()
    page = tokens.request(v, PAGES, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    query = select(Outbox).where(Outbox.status == OutboxStatus.FAILED)
    async with db.transaction() as session:
        rows, token = await read_page(session, tokens, PAGES, page, query, (Outbox.seq,))
    return FailedPage([_view(row) for row in rows], token)


def _parse_names(names: list[str]) -> list[uuid.UUID]:
    v = Violations()
    ids = []
    for i, name in enumerate(names):
        try:
            ids.append(uuid.UUID(name.removeprefix(NAME_PREFIX)))
            if not name.startswith(NAME_PREFIX):
                raise ValueError(name)
        except ValueError:
            v.add(f"names[{i}]", "INVALID_NAME", "must look like failedDeliveries/{uuid}")
    v.raise_if_any()
    return ids


async def retry_failed(db: Database, *, names: list[str]) -> int:
    """Queue failed deliveries again (all of them when `names` is empty); the
    relay republishes them under a new message id. Returns how many."""
    ids = _parse_names(names)
    # Run again should it deadlock with an erasure of one of their people
    # (this takes the outbox rows, then the event log's; erasure the reverse).
    return await db.retried(functools.partial(_requeue, ids=ids))


async def _requeue(session: AsyncSession, *, ids: list[uuid.UUID]) -> int:
    statement = (
        update(Outbox)
        .where(Outbox.status == OutboxStatus.FAILED)
        .values(
            status=OutboxStatus.PENDING,
            retry_count=Outbox.retry_count + 1,
            error=None,
            published_at=None,
            completed_at=None,
        )
        .returning(Outbox.id, Outbox.kind, Outbox.payload)
    )
    if ids:
        statement = statement.where(Outbox.id.in_(ids))
    rows = (await session.execute(statement)).all()
    missing = set(ids) - {row.id for row in rows}
    if missing:
        first = sorted(str(m) for m in missing)[0]
        raise NotFoundError(resource_type="failed delivery", resource_name=NAME_PREFIX + first)
    # An event row whose payload does not parse names no event (the relay
    # fails it again; its log row, if any, cannot be found from it).
    event_ids = [event_id for row in rows if (event_id := outbox.event_id(row.kind, row.payload))]
    if event_ids:
        await session.execute(_EVENTS_BACK_TO_PENDING, {"ids": event_ids})
    if rows:
        outbox.notify_after_commit(session)
    return len(rows)
