"""The engagement counts kept by migration 0013's trigger agree with counting
people over the engagement itself, whatever the mix, the repeats and the
batches the webhooks bring; erasure leaves them as they were."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from sqlalchemy import func, select

from service.common.validation import email_key
from service.engagement.rules import Reported, record
from service.reports.figures import (
    FIGURE_NAMES,
    Figures,
    FlowLinks,
    campaign_figures,
    flow_figures,
    flow_message_figures,
    forget_person,
)
from service.storage.models import EngagementReach

T = bus_pb2.EngagementType
BASE = datetime(2026, 5, 1, tzinfo=UTC)
TYPES = {
    "sent": T.ENGAGEMENT_TYPE_SENT,
    "delivered": T.ENGAGEMENT_TYPE_DELIVERED,
    "bounced": T.ENGAGEMENT_TYPE_BOUNCED,
    "opened": T.ENGAGEMENT_TYPE_OPENED,
    "clicked": T.ENGAGEMENT_TYPE_CLICKED,
    "unsubscribed": T.ENGAGEMENT_TYPE_UNSUBSCRIBED,
    "spam_complaint": T.ENGAGEMENT_TYPE_SPAM_COMPLAINT,
}
# The figures a type counts in, as the README defines them.
COUNTS_IN = {
    "sent": {"sent"},
    "delivered": {"sent", "delivered"},
    "bounced": {"sent", "bounced"},
    "opened": {"opened"},
    "clicked": {"clicked"},
    "unsubscribed": {"unsubscribed"},
    "spam_complaint": {"unsubscribed"},
}

engagement = st.tuples(
    st.sampled_from(sorted(TYPES)),
    st.integers(0, 4),  # who (4: no email at all)
    st.booleans(),  # a campaign's, or a flow message's
    st.integers(0, 1),  # which message of the flow
    st.integers(0, 3),  # repeated deliveries of it (the same external id)
)


def _expected(rows: list[tuple[str, str, str]]) -> Figures:
    """(type, person, external id) rows -> the people in each figure."""
    people: dict[str, set[str]] = {name: set() for name in FIGURE_NAMES}
    for type_, person, external_id in rows:
        for figure in COUNTS_IN[type_]:
            people[figure].add(person or f"x:{external_id}")
    counted = Figures()
    for name, who in people.items():
        setattr(counted, name, len(who))
    if not counted.delivered:
        counted.delivered = max(counted.sent - counted.bounced, 0)
    return counted


def _same(found: Figures, expected: Figures) -> bool:
    return all(getattr(found, n) == getattr(expected, n) for n in FIGURE_NAMES)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(engagement, min_size=1, max_size=6), min_size=1, max_size=4))
def test_counts_are_the_people_of_each_figure(loop, db, batches) -> None:
    tag = uuid.uuid4().hex[:10]
    campaign, flow = f"c-{tag}", f"F{tag}"
    emails = [f"{tag}-{n}@counts.example.com" for n in range(4)]
    by_campaign: list[tuple[str, str, str]] = []
    by_flow: list[tuple[str, str, str]] = []
    by_message: dict[str, list[tuple[str, str, str]]] = {}

    async def run() -> tuple[Figures, Figures, dict[str, Figures]]:
        for index, batch in enumerate(batches):
            reported = []
            for item, (type_, who, of_campaign, message, repeats) in enumerate(batch):
                external_id = f"{tag}-{index}-{item}"
                occurred = Timestamp()
                occurred.FromDatetime(BASE + timedelta(minutes=index))
                e = bus_pb2.Engagement(
                    provider="klaviyo",
                    external_id=external_id,
                    type=TYPES[type_],
                    email=emails[who] if who < 4 else "",
                    occur_time=occurred,
                )
                person = email_key(emails[who]) if who < 4 else ""
                if of_campaign:
                    e.campaign_id = campaign
                    by_campaign.append((type_, person, external_id))
                else:
                    e.flow_id, e.message_id = flow, f"m{message}"
                    by_flow.append((type_, person, external_id))
                    by_message.setdefault(e.message_id, []).append((type_, person, external_id))
                reported += [Reported(e, BASE)] * (1 + repeats)
            async with db.transaction() as session:
                await record(session, reported, BASE)
        links = FlowLinks(klaviyo_flow_id=flow, automation_id="")
        async with db.transaction() as session:
            campaigns = await campaign_figures(session, [campaign])
            return (
                campaigns.get(campaign, Figures()),
                await flow_figures(session, links),
                await flow_message_figures(session, links),
            )

    found_campaign, found_flow, found_messages = loop.run_until_complete(run())
    assert _same(found_campaign, _expected(by_campaign))
    assert _same(found_flow, _expected(by_flow))
    assert sorted(found_messages) == sorted(by_message)
    for message, rows in by_message.items():
        assert _same(found_messages[message], _expected(rows))


def test_erasure_keeps_the_counts_without_the_person(loop, db) -> None:
    campaign = f"c-{uuid.uuid4().hex[:10]}"
    email = f"{uuid.uuid4().hex}@counts.example.com"

    async def run() -> tuple[Figures, Figures, int]:
        e = bus_pb2.Engagement(
            provider="klaviyo",
            external_id=uuid.uuid4().hex,
            type=T.ENGAGEMENT_TYPE_DELIVERED,
            email=email,
            campaign_id=campaign,
        )
        async with db.transaction() as session:
            await record(session, [Reported(e, BASE)], BASE)
        async with db.transaction() as session:
            before = (await campaign_figures(session, [campaign]))[campaign]
            await forget_person(session, email_key(email))
        async with db.transaction() as session:
            after = (await campaign_figures(session, [campaign]))[campaign]
            named = await session.scalar(
                select(func.count()).where(EngagementReach.person == email_key(email))
            )
        return before, after, int(named or 0)

    before, after, named = loop.run_until_complete(run())
    assert (before.sent, before.delivered) == (after.sent, after.delivered) == (1, 1)
    assert named == 0
