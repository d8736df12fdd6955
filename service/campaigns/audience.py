"""A campaign's audience resolved at send time: each member of its segment gets a
decision, recorded in one statement (a 500,000-person audience is one INSERT ...
SELECT, not a loop), and the preview asks the same expression about one contact.

The decision, in this order (the first that holds):

    suppressed   the address is on the suppression list (every channel), or for SMS
                 the number is on the SMS suppression list
    no_consent   no consent for the channel on record (the newest record is not a grant)
    no_phone     SMS: no phone
    no_device    push: no device token
    capped       the frequency cap: included in `cap.messages` campaigns already in the
                 last `cap.period` and not known unsent (0 messages: no cap)
    included     with the A/B variant (ab.py's assignment, in PostgreSQL's integers),
                 or none: the remainder, who get the winner

Properties 11, 21 and 24 hold by construction: only `included` people are sent to."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Numeric,
    SmallInteger,
    Text,
    case,
    cast,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns.ab import pool_bound
from service.campaigns.content import Channel
from service.segments.audiences import (
    NO_CONSENT as NO_CONSENT,
)
from service.segments.audiences import (
    NO_DEVICE as NO_DEVICE,
)
from service.segments.audiences import (
    NO_PHONE as NO_PHONE,
)
from service.segments.audiences import (
    SUPPRESSED as SUPPRESSED,
)
from service.segments.audiences import (
    exclusions,
)
from service.storage.models import CampaignRecipient, ConsentType, Contact, SegmentMembership

INCLUDED = "included"
CAPPED = "capped"
NOT_IN_AUDIENCE = "not_in_audience"  # the preview's: not a member of the segment
_SPAN = 2**64


@dataclass(frozen=True)
class Cap:
    """At most `messages` campaigns a person is included in per `period`."""

    messages: int
    period: timedelta


@dataclass(frozen=True)
class AbSplit:
    variants: int
    test_fraction: float


def decision_sql(channel: Channel, cap: Cap, now: datetime, campaign_id: str) -> ColumnElement[str]:
    """The decision for the contact row in scope (see the module's table): the
    audiences' exclusions, then the frequency cap."""
    steps = exclusions(ConsentType(channel.value))
    if cap.messages > 0:
        earlier = (
            select(func.count())
            .select_from(CampaignRecipient)
            .where(
                CampaignRecipient.contact_id == Contact.id,
                CampaignRecipient.decision == INCLUDED,
                # Included but never sent (refused, a part failed, cancelled): not counted.
                CampaignRecipient.failure.is_(None),
                CampaignRecipient.decided_at > now - cap.period,
                CampaignRecipient.campaign_id != campaign_id,
            )
            .scalar_subquery()
        )
        steps.append((earlier >= cap.messages, CAPPED))
    return case(*steps, else_=literal(INCLUDED))


def variant_sql(campaign_id: str, split: AbSplit | None) -> ColumnElement[Any]:
    """The contact's A/B variant, or NULL for the remainder (or without a test): ab.assign
    in PostgreSQL's exact integers, h = the first 64 bits of the SHA-256 of
    "{campaign}:{contact}", unsigned."""
    if split is None:
        return cast(literal(None), SmallInteger)
    text = literal(f"{campaign_id}:") + cast(Contact.id, Text)
    digest = func.encode(func.sha256(func.convert_to(text, "UTF8")), "hex")
    signed = cast(cast(literal("x") + func.substr(digest, 1, 16), BIT(64)), BigInteger)
    h = cast(signed, Numeric) + case((signed < 0, literal(_SPAN, Numeric)), else_=literal(0))
    bound = literal(pool_bound(split.test_fraction), Numeric)
    variant = cast(func.div(h * split.variants, bound), SmallInteger)
    return case((h < bound, variant), else_=None)


async def record_decisions(
    session: AsyncSession,
    campaign_id: str,
    segment_id: str,
    channel: Channel,
    split: AbSplit | None,
    cap: Cap,
    now: datetime,
) -> Mapping[str, int]:
    """Every member's decision, once (a second run keeps the first's); the counts."""
    decision = decision_sql(channel, cap, now, campaign_id)
    chosen = (
        select(
            literal(campaign_id),
            Contact.id,
            decision,
            cast(
                case((decision == INCLUDED, variant_sql(campaign_id, split)), else_=None),
                SmallInteger,
            ),
            literal(now),
        )
        .select_from(SegmentMembership)
        .join(Contact, Contact.id == SegmentMembership.contact_id)
        .where(SegmentMembership.segment == segment_id)
    )
    columns = ["campaign_id", "contact_id", "decision", "variant", "decided_at"]
    await session.execute(
        pg_insert(CampaignRecipient).from_select(columns, chosen).on_conflict_do_nothing()
    )
    return await decision_counts(session, campaign_id)


async def decision_counts(session: AsyncSession, campaign_id: str) -> dict[str, int]:
    """How many of the campaign's audience got each decision (none before its send)."""
    counted = await session.execute(
        select(CampaignRecipient.decision, func.count())
        .where(CampaignRecipient.campaign_id == campaign_id)
        .group_by(CampaignRecipient.decision)
    )
    return {decision: int(count) for decision, count in counted.all()}


async def decision_for(
    session: AsyncSession,
    campaign_id: str,
    segment_id: str,
    channel: Channel,
    cap: Cap,
    contact_id: uuid.UUID,
    now: datetime,
) -> str:
    """What the send would decide for one contact now (the preview's question)."""
    member = await session.scalar(
        select(
            exists().where(
                SegmentMembership.segment == segment_id,
                SegmentMembership.contact_id == contact_id,
            )
        )
    )
    if not member:
        return NOT_IN_AUDIENCE
    found = await session.scalar(
        select(decision_sql(channel, cap, now, campaign_id)).where(Contact.id == contact_id)
    )
    return str(found)
