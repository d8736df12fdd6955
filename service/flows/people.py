"""Who the contacts a decision concerns are: their emails, and whether each
address is suppressed (a suppressed address enters no flow)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.validation import email_key
from service.storage.models import Contact, Suppression


async def contact_emails(
    session: AsyncSession, contact_ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(Contact.id, Contact.email).where(Contact.id.in_(contact_ids))
    )
    return {contact_id: email for contact_id, email in rows}


async def people(
    session: AsyncSession, contact_ids: set[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, bool]]:
    """Each contact's email and whether it is suppressed."""
    emails = await contact_emails(session, contact_ids)
    keys = {email_key(e): c for c, e in emails.items()}
    suppressed = set(
        await session.scalars(
            select(Suppression.email_sha256).where(Suppression.email_sha256.in_(keys))
        )
    )
    return {c: (e, email_key(e) in suppressed) for c, e in emails.items()}
