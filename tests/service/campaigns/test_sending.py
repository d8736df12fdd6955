"""A campaign's send in PostgreSQL, step by step (service/campaigns/sending.py and
progress.py), without the bus: parts per variant and per local send instant, pages that
cover every included recipient once, results counted once, and the A/B winner handed to
the remainder."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from marketing.bus.v1 import bus_pb2
from sqlalchemy import func, insert, select, update

from service.campaigns import ab, progress, sending
from service.campaigns.audience import INCLUDED, Cap
from service.campaigns.spec import (
    AbTestSpec,
    ContentSpec,
    Metric,
    ScheduleSpec,
    When,
    ab_test_document,
    content_document,
    schedule_document,
)
from service.storage.database import Database
from service.storage.models import (
    Campaign,
    CampaignChannel,
    CampaignPart,
    CampaignRecipient,
    CampaignState,
    Contact,
    EngagementFigures,
    Segment,
    SegmentKind,
)
from tests.contact_rows import Facts, insert_contact
from tests.harness import own_database

NOW = datetime(2026, 12, 1, 6, tzinfo=UTC)
NO_CAP = Cap(0, timedelta(days=7))
BODY = '<p>Hi {{ first_name | default: "there" }}</p><a href="{{ unsubscribe_url }}">x</a>'
SENDER = sending.Sender("shop@example.com", "Shop", "shop@example.com")


@pytest.fixture(scope="module")
def sending_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "campaign_sending") as url:
        yield url


async def _setup(
    db: Database,
    people: int,
    *,
    schedule: ScheduleSpec,
    ab_test: AbTestSpec | None = None,
    zones: list[str | None] | None = None,
) -> str:
    tag = uuid.uuid4().hex[:10]
    segment_id, campaign_id = f"seg-{tag}", f"cmp-{tag}"
    async with db.transaction() as session:
        await session.execute(
            insert(Segment).values(
                id=segment_id,
                display_name=segment_id,
                kind=SegmentKind.MANUAL,
                created_at=NOW,
                updated_at=NOW,
            )
        )
        for n in range(people):
            facts = Facts(True, False, False, False, False, False, False, segment_id)
            contact_id = await insert_contact(session, f"p{n}-{tag}@example.com", facts, NOW)
            if zones is not None:
                await session.execute(
                    update(Contact).where(Contact.id == contact_id).values(timezone=zones[n])
                )
        session.add(
            Campaign(
                id=campaign_id,
                display_name="Winter sale",
                channel=CampaignChannel.EMAIL,
                audience=segment_id,
                content=None if ab_test else content_document(ContentSpec("Hello", BODY)),
                ab_test=ab_test_document(ab_test),
                schedule=schedule_document(schedule),
                state=CampaignState.SCHEDULED,
                created_at=NOW,
                updated_at=NOW,
                due_at=NOW,
            )
        )
    return campaign_id


async def _start(db: Database) -> Campaign:
    async with db.transaction() as session:
        campaign = await sending.claim_due(session, NOW)
        assert campaign is not None
        await sending.start(session, campaign, NO_CAP, NOW)
        return campaign


async def _parts(db: Database, campaign_id: str) -> list[CampaignPart]:
    async with db.transaction() as session:
        return list(await sending.parts_of(session, campaign_id))


def test_a_local_time_campaign_has_a_part_per_send_instant(sending_db: str) -> None:
    asyncio.run(_test_a_local_time_campaign_has_a_part_per_send_instant(sending_db))


async def _test_a_local_time_campaign_has_a_part_per_send_instant(sending_db: str) -> None:
    db = Database(sending_db)
    try:
        zones = ["Europe/Berlin", "Europe/Berlin", "America/New_York", None, "Not/AZone"]
        schedule = ScheduleSpec(When.LOCAL, None, "2026-12-10", "09:00", "UTC")
        campaign_id = await _setup(db, 5, schedule=schedule, zones=zones)
        await _start(db)
        parts = await _parts(db, campaign_id)
        by_time = {p.send_at: p.recipients for p in parts}
        day = datetime(2026, 12, 10, 9, tzinfo=UTC)
        assert by_time == {
            day - timedelta(hours=1): 2,  # Berlin, UTC+1 in December
            day + timedelta(hours=5): 1,  # New York, UTC-5
            day: 2,  # no zone, or one PostgreSQL does not know: the default
        }
    finally:
        await db.close()


def test_pages_cover_every_included_recipient_once_and_results_count_once(sending_db: str) -> None:
    asyncio.run(_test_pages_cover_every_included_recipient_once_and_results_count_once(sending_db))


async def _test_pages_cover_every_included_recipient_once_and_results_count_once(
    sending_db: str,
) -> None:
    db = Database(sending_db)
    try:
        campaign_id = await _setup(db, 7, schedule=ScheduleSpec(When.NOW))
        campaign = await _start(db)
        assert campaign.state is CampaignState.SENDING
        [part] = await _parts(db, campaign_id)
        seen: list[str] = []
        sequence, after = 0, None
        while True:
            async with db.transaction() as session:
                row = await session.get(Campaign, campaign_id)
                part_row = await session.get(CampaignPart, (campaign_id, part.part))
                assert row is not None and part_row is not None
                sequence += 1
                page = await sending.build_page(
                    session,
                    row,
                    part_row,
                    sequence=sequence,
                    after=after,
                    through=None,
                    limit=3,
                    budget=1_000_000,
                    url_for=lambda i: f"https://prefs.example/p/{i.hex}",
                )
                if page.count == 0:
                    part_row.all_paged = True
                    break
                await sending.write_page_down(session, part_row, page, after)
                after = page.through
            message = bus_pb2.CampaignAudiencePage.FromString(page.payload)
            seen += [r.profile.email for r in message.recipients]
            assert all(r.preferences_url.startswith("https://prefs") for r in message.recipients)
        assert len(seen) == len(set(seen)) == 7
        result = bus_pb2.CampaignStepResult(
            campaign_id=campaign_id,
            part=part.part,
            sequence=1,
            imported=2,
            list_id="L1",
            failures=[bus_pb2.ContactSyncFailure(email=seen[0], reason="invalid")],
        )
        async with db.transaction() as session:
            assert await progress.record(session, result, NOW)
            assert not await progress.record(session, result, NOW), "a repeat changes nothing"
            failure = await session.scalar(
                select(CampaignRecipient.failure)
                .join(Contact, Contact.id == CampaignRecipient.contact_id)
                .where(Contact.email == seen[0], CampaignRecipient.campaign_id == campaign_id)
            )
        assert failure == "invalid"
        [part] = await _parts(db, campaign_id)
        assert (part.pages_done, part.imported, part.refused, part.list_id) == (1, 2, 1, "L1")
        request = sending.send_request(campaign, part, SENDER, NOW)
        assert request.list_name == sending.list_name(campaign, part)
        variables = [p.variable for p in request.body if p.WhichOneof("part") == "variable"]
        assert [tuple(v.path) for v in variables] == [("first_name",), ("unsubscribe_url",)]
        assert variables[0].fallback == "there" and not variables[1].HasField("fallback")
    finally:
        await db.close()


def test_the_ab_winner_goes_to_the_remainder_once_the_window_is_over(sending_db: str) -> None:
    asyncio.run(_test_the_ab_winner_goes_to_the_remainder_once_the_window_is_over(sending_db))


async def _test_the_ab_winner_goes_to_the_remainder_once_the_window_is_over(
    sending_db: str,
) -> None:
    db = Database(sending_db)
    try:
        test = AbTestSpec(
            (ContentSpec("A", BODY), ContentSpec("B", BODY)),
            0.5,
            Metric.OPEN_RATE,
            timedelta(hours=1),
            1,
            0.95,
        )
        campaign_id = await _setup(db, 40, schedule=ScheduleSpec(When.NOW), ab_test=test)
        await _start(db)
        parts = await _parts(db, campaign_id)
        assert sorted(p.variant for p in parts if p.variant is not None) == [0, 1]
        async with db.transaction() as session:
            rows = (
                await session.scalars(
                    select(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign_id)
                )
            ).all()
            for r in rows:
                want = ab.assign(campaign_id, r.contact_id, 2, 0.5)
                assert r.variant == want
                assert (r.part is None) == (want is None), "the remainder waits for the winner"
        for n, part in enumerate(parts):  # each variant's provider campaign is sent
            result = bus_pb2.CampaignStepResult(
                campaign_id=campaign_id, part=part.part, provider_campaign_id=f"pc-{n}"
            )
            async with db.transaction() as session:
                await session.execute(
                    update(CampaignPart)
                    .where(CampaignPart.campaign_id == campaign_id)
                    .values(all_paged=True)
                )
                await progress.record(session, result, NOW)
        async with db.transaction() as session:
            campaign = await session.get(Campaign, campaign_id)
            assert campaign is not None and campaign.state is CampaignState.TESTING
            assert await progress.claim_test_due(session, NOW) is None, "the window is open"
            _figures(session, "pc-0", delivered=100, opened=10)
            _figures(session, "pc-1", delivered=100, opened=40)
        later = NOW + timedelta(hours=1)
        async with db.transaction() as session:
            due = await progress.claim_test_due(session, later)
            assert due is not None
            decision = await progress.decide(session, due, later)
        assert decision.winner == 1 and decision.significant and not decision.manual
        parts = await _parts(db, campaign_id)
        [remainder] = [p for p in parts if p.remainder]
        remaining = sum(1 for r in rows if r.variant is None and r.decision == INCLUDED)
        assert (remainder.variant, remainder.recipients) == (1, remaining)
    finally:
        await db.close()


def test_variants_at_a_provider_reporting_no_deliveries_count_the_sent(sending_db: str) -> None:
    asyncio.run(_test_variants_at_a_provider_reporting_no_deliveries_count_the_sent(sending_db))


async def _test_variants_at_a_provider_reporting_no_deliveries_count_the_sent(
    sending_db: str,
) -> None:
    """ActiveCampaign reports sends, not deliveries: a variant's delivered are its sent people
    who did not bounce, as GetCampaignMetrics counts them (not 0, which made every rate 0)."""
    db = Database(sending_db)
    try:
        test = AbTestSpec(
            (ContentSpec("A", BODY), ContentSpec("B", BODY)),
            0.5,
            Metric.OPEN_RATE,
            timedelta(hours=1),
            1,
            0.95,
        )
        campaign_id = await _setup(db, 20, schedule=ScheduleSpec(When.NOW), ab_test=test)
        await _start(db)
        async with db.transaction() as session:
            for part in await sending.parts_of(session, campaign_id):
                part.provider_campaign_id = f"ac-{campaign_id}-{part.variant}"
            _figures(session, f"ac-{campaign_id}-0", sent=100, bounced=10, opened=10)
            _figures(session, f"ac-{campaign_id}-1", sent=100, opened=40)
        async with db.transaction() as session:
            results = await progress.variant_results(session, campaign_id, 2, Metric.OPEN_RATE)
        assert results == [ab.VariantResult(0, 90, 10), ab.VariantResult(1, 100, 40)]
    finally:
        await db.close()


def _figures(
    session: Any,
    provider_id: str,
    *,
    opened: int,
    delivered: int = 0,
    sent: int | None = None,
    bounced: int = 0,
) -> None:
    """A provider campaign's figures; `sent` is `delivered` unless given (ActiveCampaign
    reports sends and no deliveries: `sent` given, `delivered` 0)."""
    session.add(
        EngagementFigures(
            scope="campaign",
            provider="klaviyo",
            scope_id=provider_id,
            message_id="",
            shard=0,
            sent=delivered if sent is None else sent,
            delivered=delivered,
            opened=opened,
            clicked=0,
            bounced=bounced,
            unsubscribed=0,
            first_at=NOW,
            last_at=NOW,
        )
    )


def test_a_failure_that_may_pass_is_tried_again_and_a_lasting_one_fails_the_part(
    sending_db: str,
) -> None:
    asyncio.run(_tried_again(sending_db))


async def _tried_again(url: str) -> None:
    db = Database(url)
    try:
        campaign_id = await _setup(db, 3, schedule=ScheduleSpec(When.NOW))
        campaign = await _start(db)
        [part] = await _parts(db, campaign_id)
        async with db.transaction() as session:
            row = await session.get(Campaign, campaign_id)
            part_row = await session.get(CampaignPart, (campaign_id, part.part))
            assert row is not None and part_row is not None
            page = await sending.build_page(
                session, row, part_row, sequence=1, after=None, through=None, limit=10,
                budget=None, url_for=lambda i: f"https://p.example/{i.hex}",
            )  # fmt: skip
            await sending.write_page_down(session, part_row, page, None)
            part_row.all_paged = True

        def failed(attempt: int, *, retryable: bool = True, sequence: int = 1) -> Any:
            return bus_pb2.CampaignStepResult(
                campaign_id=campaign_id,
                part=part.part,
                sequence=sequence,
                error="Klaviyo answered 503",
                retryable=retryable,
                attempt=attempt,
            )

        for attempt in range(progress.MAX_TRIES - 1):
            async with db.transaction() as session:
                assert await progress.record(session, failed(attempt), NOW)
                assert not await progress.record(session, failed(attempt), NOW), "counted once"
            [part] = await _parts(db, campaign_id)
            assert part.state == "FILLING" and part.pages_done == 0, "tried again"
            again = sending.page_message_id(campaign_id, part.part, 1, attempt + 1)
            assert again.endswith(f":retry{attempt + 1}"), "a new Msg-Id: not dropped as a copy"
        async with db.transaction() as session:
            await progress.record(session, failed(progress.MAX_TRIES - 1), NOW)
            unsent = await session.scalar(
                select(func.count()).where(
                    CampaignRecipient.campaign_id == campaign_id,
                    CampaignRecipient.failure.is_not(None),
                )
            )
        [part] = await _parts(db, campaign_id)
        assert part.state == "FAILED" and unsent == 3, "the last try fails the part, and says so"
        async with db.transaction() as session:
            reread = await session.get(Campaign, campaign_id)
            assert reread is not None and reread.state is CampaignState.FAILED
        assert campaign.id == campaign_id
    finally:
        await db.close()
