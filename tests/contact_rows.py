"""A contact written straight into PostgreSQL with the facts that decide who may get
a message on a channel: consent flags, a phone, suppressions, a device, a segment."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.validation import email_key
from service.sms.suppression import phone_key
from service.storage.models import (
    Contact,
    PushToken,
    SegmentMembership,
    SmsSuppression,
    Suppression,
)


@dataclass(frozen=True)
class Facts:
    email_opt_in: bool
    sms_opt_in: bool
    push_opt_in: bool
    phone: bool  # has one
    address_suppressed: bool
    number_suppressed: bool
    device: bool
    member_of: str | None  # a segment id


async def insert_contact(session: AsyncSession, email: str, f: Facts, now: datetime) -> uuid.UUID:
    contact_id = uuid.uuid4()
    phone = f"+4915{contact_id.int % 10**9:09d}"  # one number per contact
    await session.execute(
        insert(Contact).values(
            id=contact_id,
            email=email,
            phone=phone if f.phone else None,
            email_opt_in=f.email_opt_in,
            sms_opt_in=f.sms_opt_in,
            push_opt_in=f.push_opt_in,
            custom_properties={},
            created_at=now,
            updated_at=now,
        )
    )
    if f.member_of is not None:
        await session.execute(
            insert(SegmentMembership).values(
                contact_id=contact_id, segment=f.member_of, added_at=now
            )
        )
    if f.address_suppressed:
        await session.execute(
            insert(Suppression).values(email_sha256=email_key(email), reason="test", created_at=now)
        )
    if f.number_suppressed:
        await session.execute(
            insert(SmsSuppression).values(
                phone_sha256=phone_key(phone), reason="opted_out", source="test", created_at=now
            )
        )
    if f.device:
        await session.execute(
            insert(PushToken).values(
                token=f"apns-{contact_id.hex}",
                contact_id=contact_id,
                platform="ios",
                vendor="apns",
                created_at=now,
                updated_at=now,
            )
        )
    return contact_id
