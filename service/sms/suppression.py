"""The SMS suppression list: numbers that get no marketing SMS.

A number goes on it with every SMS opt-out, whatever the path (OptOutSms, a
withdrawn SMS consent, an unsubscribe from everything, a provider's STOP), in the
transaction that records the opt-out: Property 23's "at once". Only a new,
explicit SMS grant for the number (with the wording shown, see consent.rules)
takes it off. Keyed by the SHA-256 of the E.164 number, so the entry outlives an
erasure without keeping the number."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.models import SmsSuppression

OPTED_OUT = "opted_out"


def phone_key(phone: str) -> str:
    """The list's key of an E.164 number."""
    return hashlib.sha256(phone.encode()).hexdigest()


def phone_key_sql(phone: Any) -> ColumnElement[str]:
    """`phone_key` computed by PostgreSQL, of a phone stored as E.164."""
    return func.encode(func.sha256(func.convert_to(phone, "UTF8")), "hex")


def is_suppressed_sql(phone: Any) -> ColumnElement[bool]:
    """Whether the number (a column or expression) is on the list."""
    return exists().where(SmsSuppression.phone_sha256 == phone_key_sql(phone))


async def suppress(session: AsyncSession, phone: str, source: str, now: datetime) -> bool:
    """Put the number on the list; whether that changed it."""
    inserted = await session.scalar(
        pg_insert(SmsSuppression)
        .values(phone_sha256=phone_key(phone), reason=OPTED_OUT, source=source, created_at=now)
        .on_conflict_do_nothing()
        .returning(SmsSuppression.phone_sha256)
    )
    return inserted is not None


async def lift(session: AsyncSession, phone: str, granted_at: datetime) -> bool:
    """Take the number off the list for an explicit new opt-in given at `granted_at`;
    whether it was on. A grant dated before the opt-out (a late report of an older
    decision) lifts nothing."""
    lifted = await session.execute(
        delete(SmsSuppression).where(
            SmsSuppression.phone_sha256 == phone_key(phone),
            SmsSuppression.created_at <= granted_at,
        )
    )
    return bool(getattr(lifted, "rowcount", 0))


async def suppressed(session: AsyncSession, phone: str) -> bool:
    return await session.get(SmsSuppression, phone_key(phone)) is not None
