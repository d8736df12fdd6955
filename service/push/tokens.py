"""A contact's device tokens, and the provider work they cause.

Every change of a token is queued for the provider in the transaction that makes
it, as one KIND_PUSH_TOKEN_CHANGED per token (the dispatcher fences them per
person and token: the newest change of a token wins). Deleting a person's tokens
is what withdrawing push consent does, whichever way it is withdrawn (Property 25:
at once, here and at the provider)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from marketing.bus.v1 import bus_pb2
from sqlalchemy import ColumnElement, case, delete, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.deliveries import outbox
from service.storage.models import Contact, PushToken

PLATFORMS = ("ios", "android")
VENDORS = ("apns", "fcm")
MAX_TOKEN_LENGTH = 1024
TOKEN_ID_LENGTH = 32
MAX_TOKENS_PER_CONTACT = 20


@dataclass(frozen=True)
class TokenView:
    token: str
    contact_id: uuid.UUID
    platform: str
    vendor: str
    created_at: datetime
    updated_at: datetime


def token_id(token: str) -> str:
    """The token's id in resource names: no token in a URL or a log."""
    return hashlib.sha256(token.encode()).hexdigest()[:TOKEN_ID_LENGTH]


def view(row: PushToken) -> TokenView:
    return TokenView(
        row.token, row.contact_id, row.platform, row.vendor, row.created_at, row.updated_at
    )


def has_token_sql(contact_id: object) -> ColumnElement[bool]:
    """Whether the contact (a column) has a device to send to."""
    return exists().where(PushToken.contact_id == contact_id)


async def register(
    session: AsyncSession, contact: Contact, token: str, platform: str, vendor: str, now: datetime
) -> TokenView:
    """The token is the contact's from now on (it moves when another contact had
    it: a device changed hands); the provider is told."""
    statement = pg_insert(PushToken).values(
        token=token,
        contact_id=contact.id,
        platform=platform,
        vendor=vendor,
        created_at=now,
        updated_at=now,
    )
    excluded = statement.excluded
    moved = PushToken.contact_id != excluded.contact_id
    row = (
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[PushToken.token],
                set_={
                    "contact_id": excluded.contact_id,
                    "platform": excluded.platform,
                    "vendor": excluded.vendor,
                    "updated_at": excluded.updated_at,
                    # Registered by someone else: theirs from now on.
                    "created_at": case((moved, excluded.created_at), else_=PushToken.created_at),
                },
            ).returning(PushToken)
        )
    ).scalar_one()
    await _enqueue(session, contact, [view(row)], registered=True, now=now)
    await _evict_oldest(session, contact, now)
    return view(row)


async def _evict_oldest(session: AsyncSession, contact: Contact, now: datetime) -> None:
    """Keep the contact's newest MAX_TOKENS_PER_CONTACT devices: apps get new
    tokens on reinstall, and the old ones only bounce."""
    stale = (
        select(PushToken.token)
        .where(PushToken.contact_id == contact.id)
        .order_by(PushToken.updated_at.desc(), PushToken.token)
        .offset(MAX_TOKENS_PER_CONTACT)
    )
    gone = (
        await session.scalars(
            delete(PushToken)
            .where(PushToken.token.in_(stale), PushToken.contact_id == contact.id)
            .returning(PushToken)
        )
    ).all()
    await _enqueue(session, contact, [view(row) for row in gone], registered=False, now=now)


async def delete_all(session: AsyncSession, contact: Contact, now: datetime) -> int:
    """Delete every token of the contact, here and (queued) at the provider."""
    gone = (
        await session.scalars(
            delete(PushToken).where(PushToken.contact_id == contact.id).returning(PushToken)
        )
    ).all()
    await _enqueue(session, contact, [view(row) for row in gone], registered=False, now=now)
    return len(gone)


async def _enqueue(
    session: AsyncSession,
    contact: Contact,
    tokens: Sequence[TokenView],
    *,
    registered: bool,
    now: datetime,
) -> None:
    key = check.email_key(contact.email)
    rows = []
    for t in tokens:
        change = bus_pb2.PushTokenChanged(
            email=contact.email,
            token=t.token,
            platform=t.platform,
            vendor=t.vendor,
            registered=registered,
        )
        if contact.phone is not None:
            change.phone = contact.phone
        rows.append((key, bus_pb2.KIND_PUSH_TOKEN_CHANGED, change.SerializeToString()))
    await outbox.enqueue_many(session, rows, now=now)


async def tokens_of(session: AsyncSession, contact_id: uuid.UUID) -> list[TokenView]:
    rows = await session.scalars(
        select(PushToken)
        .where(PushToken.contact_id == contact_id)
        .order_by(PushToken.updated_at.desc(), PushToken.token)
    )
    return [view(row) for row in rows]
