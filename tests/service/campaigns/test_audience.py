"""A campaign's audience resolved in one statement: every member's recorded decision is
the model's (suppressed, no consent, no phone, no device, capped, included), the A/B
variant PostgreSQL computes is ab.assign's, and the preview's question about one
contact gets the same answer."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from service.campaigns import ab
from service.campaigns.audience import (
    CAPPED,
    INCLUDED,
    NO_CONSENT,
    NO_DEVICE,
    NO_PHONE,
    NOT_IN_AUDIENCE,
    SUPPRESSED,
    AbSplit,
    Cap,
    decision_for,
    record_decisions,
)
from service.campaigns.content import Channel
from service.storage.database import Database
from service.storage.models import (
    Campaign,
    CampaignChannel,
    CampaignRecipient,
    CampaignState,
    Segment,
    SegmentKind,
)
from tests.contact_rows import Facts, insert_contact
from tests.harness import own_database

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
PERIOD = timedelta(days=7)
person = st.fixed_dictionaries(
    {
        "member": st.booleans(),
        "email": st.booleans(),
        "sms": st.booleans(),
        "push": st.booleans(),
        "phone": st.booleans(),
        "address_suppressed": st.booleans(),
        "number_suppressed": st.booleans(),
        "device": st.booleans(),
        "earlier": st.integers(0, 3),  # campaigns they were included in lately
        "long_ago": st.booleans(),  # one more, before the cap's period
    }
)
splits = st.one_of(
    st.none(), st.builds(AbSplit, st.integers(2, 7), st.sampled_from([0.2, 0.5, 1.0]))
)


@pytest.fixture(scope="module")
def campaign_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "campaign_audience") as url:
        yield url


def _expected(p: dict[str, Any], channel: Channel, cap: int) -> str:
    if not p["member"]:
        return NOT_IN_AUDIENCE
    number_stopped = channel is Channel.SMS and p["phone"] and p["number_suppressed"]
    if p["address_suppressed"] or number_stopped:
        return SUPPRESSED
    if not p[{Channel.EMAIL: "email", Channel.SMS: "sms", Channel.PUSH: "push"}[channel]]:
        return NO_CONSENT
    if channel is Channel.SMS and not p["phone"]:
        return NO_PHONE
    if channel is Channel.PUSH and not p["device"]:
        return NO_DEVICE
    if cap and p["earlier"] >= cap:
        return CAPPED
    return INCLUDED


# **Feature: marketing-automation, Property 11: Suppression list respected**
# **Feature: marketing-automation, Property 21: SMS opt-in validation**
# **Feature: marketing-automation, Property 24: Push permission required**
def test_every_members_decision_is_recorded_as_the_rules_say(campaign_db: str) -> None:
    @settings(max_examples=100, deadline=None)
    @given(
        people=st.lists(person, max_size=10),
        channel=st.sampled_from(list(Channel)),
        cap=st.integers(0, 3),
        split=splits,
    )
    def decided(people: list[dict[str, Any]], channel: Channel, cap: int, split: Any) -> None:
        asyncio.run(_scenario(campaign_db, people, channel, cap, split))

    decided()


async def _scenario(
    url: str, people: list[dict[str, Any]], channel: Channel, cap: int, split: AbSplit | None
) -> None:
    db = Database(url)
    tag = uuid.uuid4().hex[:10]
    segment_id, campaign_id = f"aud-{tag}", f"cmp-{tag}"
    try:
        async with db.transaction() as session:
            await _campaigns(session, segment_id, campaign_id, channel, earlier=4)
            ids = [await _person(session, segment_id, tag, n, p) for n, p in enumerate(people)]
        limit = Cap(cap, PERIOD)
        async with db.transaction() as session:
            counts = await record_decisions(
                session, campaign_id, segment_id, channel, split, limit, NOW
            )
            again = await record_decisions(  # a second run (a restart) keeps the first's
                session, campaign_id, segment_id, channel, split, limit, NOW
            )
            rows = {
                r.contact_id: r
                for r in await session.scalars(
                    select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
                )
            }
            asked = [
                await decision_for(session, campaign_id, segment_id, channel, limit, i, NOW)
                for i in ids
            ]
        expected = [_expected(p, channel, cap) for p in people]
        assert asked == expected, "the preview's answer is the send's"
        members = [(i, e) for i, e in zip(ids, expected, strict=True) if e != NOT_IN_AUDIENCE]
        assert {i: rows[i].decision for i, _ in members} == dict(members)
        assert set(rows) == {i for i, _ in members}, "only members are decided"
        assert dict(counts) == dict(Counter(e for _, e in members)) == dict(again)
        for i, decision in members:
            want = (
                ab.assign(campaign_id, i, split.variants, split.test_fraction)
                if split is not None and decision == INCLUDED
                else None
            )
            assert rows[i].variant == want
    finally:
        await db.close()


async def _campaigns(
    session: Any, segment_id: str, campaign_id: str, channel: Channel, earlier: int
) -> None:
    await session.execute(
        insert(Segment).values(
            id=segment_id,
            display_name=segment_id,
            kind=SegmentKind.MANUAL,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    for n in range(earlier + 2):  # this campaign, earlier ones and one long ago
        session.add(
            Campaign(
                id=campaign_id if n == 0 else f"{campaign_id}-{n}",
                display_name="c",
                channel=CampaignChannel(channel.value),
                audience=segment_id,
                state=CampaignState.SENT if n else CampaignState.SENDING,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    await session.flush()


async def _person(session: Any, segment_id: str, tag: str, n: int, p: dict[str, Any]) -> uuid.UUID:
    facts = Facts(
        email_opt_in=p["email"],
        sms_opt_in=p["sms"],
        push_opt_in=p["push"],
        phone=p["phone"],
        address_suppressed=p["address_suppressed"],
        number_suppressed=p["number_suppressed"],
        device=p["device"],
        member_of=segment_id if p["member"] else None,
    )
    contact_id = await insert_contact(session, f"p{n}-{tag}@example.com", facts, NOW)
    campaign_id = f"cmp-{tag}"
    earlier = [(f"{campaign_id}-{k + 1}", NOW - timedelta(days=1)) for k in range(p["earlier"])]
    if p["long_ago"]:
        earlier.append((f"{campaign_id}-5", NOW - PERIOD - timedelta(hours=1)))
    for other, at in earlier:
        await session.execute(
            insert(CampaignRecipient).values(
                campaign_id=other, contact_id=contact_id, decision=INCLUDED, decided_at=at
            )
        )
    return contact_id
