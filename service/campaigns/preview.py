"""PreviewCampaignMessage: a campaign's message as one contact would get it, and
whether they would get it now (the same tests the send applies to everyone)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns import ab
from service.campaigns.audience import INCLUDED, Cap, decision_for
from service.campaigns.content import CONTACT_FIELDS, Channel, Content, parse_content, render
from service.campaigns.rules import parse_campaign_name
from service.campaigns.spec import ContentSpec
from service.contacts.rules import parse_contact_name
from service.errors import NotFoundError, Violations
from service.preferences.links import PreferenceLinks
from service.storage.database import Database
from service.storage.models import (
    Campaign,
    CampaignPart,
    CampaignPartState,
    CampaignRecipient,
    Contact,
)


@dataclass(frozen=True)
class Preview:
    subject: str
    body: str
    variant: int
    test_recipient: bool
    exclusion_reason: str | None  # None: the contact would get it
    recorded: Recorded | None  # what the send decided, once it began


@dataclass(frozen=True)
class Recorded:
    decision: str
    variant: int | None
    not_sent_reason: str
    provider_campaign_id: str
    decided_at: datetime


async def preview(
    db: Database,
    links: PreferenceLinks,
    *,
    name: str,
    contact: str,
    variant: int | None,
    cap: Cap,
    now: datetime,
) -> Preview:
    v = Violations()
    campaign_id = parse_campaign_name(v, "name", name)
    contact_id = parse_contact_name(v, "contact", contact)
    v.raise_if_any()
    assert campaign_id is not None and contact_id is not None
    async with db.snapshot() as session:  # several reads, one moment
        row = await session.get(Campaign, campaign_id)
        if row is None:
            raise NotFoundError(resource_type="campaign", resource_name=name)
        person = await session.get(Contact, contact_id)
        if person is None:
            raise NotFoundError(resource_type="contact", resource_name=contact)
        channel = Channel(row.channel.value)
        contents = _contents(row, channel)
        chosen, test_recipient = _variant(row, contact_id, len(contents), variant)
        decided = await decision_for(session, row.id, row.audience, channel, cap, person.id, now)
        recorded = await _recorded(session, row.id, person.id)
    reason = None if decided == INCLUDED else decided
    rendered = render(contents[chosen], _person(person), links.url_for(person.id))
    return Preview(rendered.subject, rendered.body, chosen, test_recipient, reason, recorded)


async def _recorded(
    session: AsyncSession, campaign_id: str, contact_id: uuid.UUID
) -> Recorded | None:
    """The contact's recorded decision, with the variant and provider campaign of the part
    that carried them (the remainder's is the winner)."""
    found = (
        await session.execute(
            select(CampaignRecipient, CampaignPart)
            .outerjoin(
                CampaignPart,
                (CampaignPart.campaign_id == CampaignRecipient.campaign_id)
                & (CampaignPart.part == CampaignRecipient.part),
            )
            .where(
                CampaignRecipient.campaign_id == campaign_id,
                CampaignRecipient.contact_id == contact_id,
            )
        )
    ).first()
    if found is None:
        return None
    recipient, part = found
    sent = part is not None and part.state == CampaignPartState.SENT
    return Recorded(
        recipient.decision,
        part.variant if part is not None else recipient.variant,
        recipient.failure or "",
        (part.provider_campaign_id or "") if sent else "",
        recipient.decided_at,
    )


def _contents(row: Campaign, channel: Channel) -> list[Content]:
    specs = (
        [ContentSpec(c["subject"], c["body"]) for c in row.ab_test["variants"]]
        if row.ab_test is not None
        else []
        if row.content is None
        else [ContentSpec(**row.content)]
    )
    contents = []
    for spec in specs:
        v = Violations()
        parsed = parse_content(v, "campaign.content.", channel, spec.subject, spec.body)
        if parsed is not None:
            contents.append(parsed)
    if not contents:
        v = Violations()
        v.add("name", "NO_CONTENT", "the campaign has no content to preview yet")
        v.raise_if_any()
    return contents


def _variant(
    row: Campaign, contact_id: uuid.UUID, variants: int, asked: int | None
) -> tuple[int, bool]:
    """The variant to render, and whether the contact is an A/B test recipient."""
    assigned = None
    if row.ab_test is not None:
        fraction = row.ab_test.get("test_fraction") or 0.2
        assigned = ab.assign(row.id, contact_id, variants, fraction)
    if asked is not None and not 0 <= asked < variants:
        v = Violations()
        v.add("variant", "OUT_OF_RANGE", f"the campaign has {variants} variant(s)")
        v.raise_if_any()
    chosen = asked if asked is not None else (assigned or 0)
    return chosen, assigned is not None


def _person(c: Contact) -> dict[str, object]:
    values: dict[str, object] = {field: getattr(c, field) for field in CONTACT_FIELDS}
    values["email"] = c.email
    values["custom"] = dict(c.custom_properties or {})
    return values
