"""Who may receive a message on a channel from a segment now: the segment's
members with consent for that channel (consent is never assumed: the flag is
the newest record's) and not on the suppression list (an unsubscribe, a
complaint or a bounce suppresses the address for every channel).

Resolved in keyset pages of contact ids, so a 500,000-person audience is
streamed in flat memory; automation and campaigns take recipients from here
and nowhere else (Property 11)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import exists, not_, select

from service.common.sql import email_key_sql
from service.storage.database import Database
from service.storage.models import ConsentType, Contact, SegmentMembership, Suppression

DEFAULT_PAGE = 5000
_CHANNELS = {
    ConsentType.EMAIL: Contact.email_opt_in,
    ConsentType.SMS: Contact.sms_opt_in,
    ConsentType.PUSH: Contact.push_opt_in,
}


@dataclass(frozen=True)
class Recipient:
    contact_id: uuid.UUID
    email: str
    phone: str | None


def channels() -> frozenset[ConsentType]:
    """The consent types that are messaging channels."""
    return frozenset(_CHANNELS)


async def audience_page(
    db: Database,
    segment_id: str,
    channel: ConsentType,
    *,
    after: uuid.UUID | None = None,
    limit: int = DEFAULT_PAGE,
) -> list[Recipient]:
    """Up to `limit` recipients with contact ids above `after`, in id order."""
    opted_in = _CHANNELS.get(channel)
    if opted_in is None:
        raise ValueError(f"{channel} is not a messaging channel")
    suppressed = exists().where(Suppression.email_sha256 == email_key_sql(Contact.email))
    query = (
        select(Contact.id, Contact.email, Contact.phone)
        .join(SegmentMembership, SegmentMembership.contact_id == Contact.id)
        .where(SegmentMembership.segment == segment_id, opted_in, not_(suppressed))
        .order_by(Contact.id)
        .limit(limit)
    )
    if channel is ConsentType.SMS:
        query = query.where(Contact.phone.is_not(None))
    if after is not None:
        query = query.where(Contact.id > after)
    async with db.transaction() as session:
        rows = await session.execute(query)
        return [Recipient(contact_id, email, phone) for contact_id, email, phone in rows]


async def audience(
    db: Database, segment_id: str, channel: ConsentType, *, page: int = DEFAULT_PAGE
) -> AsyncIterator[list[Recipient]]:
    """Every recipient, a page at a time (each page its own short transaction)."""
    after: uuid.UUID | None = None
    while True:
        found = await audience_page(db, segment_id, channel, after=after, limit=page)
        if found:
            yield found
        if len(found) < page:
            return
        after = found[-1].contact_id
