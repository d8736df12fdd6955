"""The one-click queue (`marketing_one_click`): one-click unsubscribes (RFC 8058)
that were answered and are not yet applied.

The preference page records a click in one statement and answers; the click is
then as durable as any committed row. It is applied (email withdrawn, the
newsletter left, the address suppressed, the provider told:
consent.unsubscribing) and deleted in one transaction, by the one-click worker
or, sooner, by the next consent write on the address, which applies the clicks
queued for it before its own decision. So a click is applied exactly once, and after every decision
taken on the address before it was answered and before every one taken after.

This module is the table's SQL only; what a click does is consent.unsubscribing's."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ARRAY, Select, String, any_, bindparam, delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.sql import email_key_sql
from service.storage.models import Contact, OneClickRequest, Timestamp


class QueuedClick(NamedTuple):
    contact_id: uuid.UUID
    key: str  # the address's SHA-256
    clicked_at: datetime


def _queue_statement() -> Select[int]:
    """INSERT the contact's click unless one is queued, and count the contact (0: no
    such contact, nothing queued). Built once: the page runs it for every click,
    and building a statement costs more Python than running a compiled one."""
    person = (
        select(Contact.id, Contact.email).where(Contact.id == bindparam("contact_id")).cte("person")
    )
    queued = (
        pg_insert(OneClickRequest)
        .from_select(
            ["contact_id", "email_sha256", "clicked_at"],
            select(
                person.c.id,
                email_key_sql(person.c.email),
                bindparam("clicked_at", type_=Timestamp),
            ),
        )
        .on_conflict_do_nothing()
        .cte("queued")
    )
    return select(func.count()).select_from(person).add_cte(queued)


_QUEUE = _queue_statement()


async def queue(session: AsyncSession, contact_id: uuid.UUID, clicked_at: datetime) -> bool:
    """Record a click of the contact's (a repeat while one is queued changes
    nothing); whether the contact exists."""
    found = await session.scalar(_QUEUE, {"contact_id": contact_id, "clicked_at": clicked_at})
    return bool(found)


async def is_queued(session: AsyncSession, contact_id: uuid.UUID) -> bool:
    found = await session.scalar(select(exists().where(OneClickRequest.contact_id == contact_id)))
    return bool(found)


async def oldest_addresses(session: AsyncSession, limit: int) -> list[str]:
    """The addresses of up to `limit` queued clicks, the oldest first (no lock:
    whoever applies them takes the address's lock first)."""
    rows = await session.scalars(
        select(OneClickRequest.email_sha256).order_by(OneClickRequest.clicked_at).limit(limit)
    )
    return list(dict.fromkeys(rows))


async def take(session: AsyncSession, keys: Sequence[str]) -> list[QueuedClick]:
    """Delete and return the clicks queued for these addresses, oldest first. The
    caller holds the addresses' locks and applies the clicks in this transaction."""
    if not keys:
        return []
    rows = await session.execute(
        delete(OneClickRequest)
        .where(OneClickRequest.email_sha256 == any_(bindparam("keys", list(keys), ARRAY(String))))
        .returning(
            OneClickRequest.contact_id, OneClickRequest.email_sha256, OneClickRequest.clicked_at
        )
        .execution_options(synchronize_session=False)
    )
    return sorted((QueuedClick(*row) for row in rows), key=lambda q: q.clicked_at)
