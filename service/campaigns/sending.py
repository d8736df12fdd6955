"""A campaign's send, step by step, each step one transaction (the driver,
workers/campaign_driver.py, runs them and publishes what they build):

    SCHEDULED --due--> SENDING: every member's decision recorded (audience.py), the
        included split into parts: one per A/B variant (the test pool) and send
        instant (a local-time schedule gives each zone its own), or one for all
    a part FILLING: its recipients in pages (contact id order, each written down
        before it is published) imported into the part's provider list
    a part SENDING: every page imported; the provider campaign asked for
    a part SENT (or FAILED): the provider took it
    all parts sent: SENT, or with an A/B test TESTING until the window ends; then the
        winner (ab.py) goes to the remainder as one more part, and SENT

A part's recipients, its pages and their results are rows, so a driver killed at any
point takes up where the rows stand: a page written down but perhaps not published is
published again under the same Nats-Msg-Id (JetStream drops the copy), a result counted
once (its page's `done_at`)."""

from __future__ import annotations

import enum
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from marketing.bus.v1 import bus_pb2
from marketing_runtime import campaign_ids
from sqlalchemy import Row, case, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns import audience
from service.campaigns.audience import AbSplit, Cap
from service.campaigns.content import Channel, Content, Template, Text, parse_content
from service.campaigns.spec import (
    AbTestSpec,
    ScheduleSpec,
    When,
    ab_test_of,
    content_of,
    local_date,
    local_time,
    schedule_of,
)
from service.contact_sync.chunks import outbox_watermark
from service.contacts.rules import fill_contact_payload
from service.errors import Violations
from service.segments.audiences import exclusions
from service.storage.models import (
    Campaign,
    CampaignPage,
    CampaignPart,
    CampaignPartState,
    CampaignRecipient,
    CampaignState,
    ConsentType,
    Contact,
)

log = logging.getLogger(__name__)
# The most a zone is ahead of UTC (Pacific/Kiritimati): a local-time campaign's first
# recipients are there.
_EARLIEST_OFFSET = timedelta(hours=14)
_BUS_CHANNEL = {"EMAIL": "email", "SMS": "sms", "PUSH": "push"}


@dataclass(frozen=True)
class Sender:
    """Who campaign email comes from (the service's settings)."""

    from_email: str
    from_label: str
    reply_to: str


def due_at(schedule: ScheduleSpec, now: datetime, lead: timedelta) -> datetime:
    """When a scheduled campaign's send begins: at once, or `lead` before its time (its
    lists take that long to fill), or before the first zone's local time comes."""
    if schedule.when is When.AT and schedule.send_at is not None:
        return max(now, schedule.send_at - lead)
    if schedule.when is When.LOCAL:
        day, moment = local_date(schedule), local_time(schedule)
        assert day is not None and moment is not None  # checked when scheduled
        first = datetime.combine(day, moment, tzinfo=UTC) - _EARLIEST_OFFSET
        return max(now, first - lead)
    return now


async def claim_due(session: AsyncSession, now: datetime) -> Campaign | None:
    """A scheduled campaign whose send is due, locked (another replica's driver skips it)."""
    query = (
        select(Campaign)
        .where(Campaign.state == CampaignState.SCHEDULED, Campaign.due_at <= now)
        .order_by(Campaign.due_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).first()


async def start(session: AsyncSession, campaign: Campaign, cap: Cap, now: datetime) -> None:
    """SCHEDULED -> SENDING: the decisions and the parts. A campaign nobody may get is SENT
    at once (its decisions say why)."""
    ab = _ab(campaign)
    split = None if ab is None else _split(ab)
    began = time.perf_counter()
    counts = await audience.record_decisions(
        session,
        campaign.id,
        campaign.audience,
        Channel(campaign.channel.value),
        split,
        cap,
        now,
    )
    schedule = schedule_of(campaign.schedule)
    assert schedule is not None
    decided = time.perf_counter()
    pool = Pool.ALL if ab is None else Pool.TEST
    parts = await _make_parts(session, campaign.id, schedule, pool)
    log.info(
        "campaign %s: %s decided in %.1f s, %d parts in %.1f s",
        campaign.id,
        dict(counts),
        decided - began,
        parts,
        time.perf_counter() - decided,
    )
    campaign.state = CampaignState.SENDING
    campaign.send_start_at = now
    campaign.updated_at = now
    if parts == 0 and ab is None:
        campaign.state = CampaignState.SENT
    elif parts == 0:  # nobody in the test pool: the remainder gets the first variant
        await start_remainder(session, campaign, _no_test_decision(now))


def _ab(campaign: Campaign) -> AbTestSpec | None:
    ab = ab_test_of(campaign.ab_test)
    return None if ab is None else ab.settled()


def _split(ab: AbTestSpec) -> AbSplit:
    assert ab.test_fraction is not None  # settled: the default filled in
    return AbSplit(len(ab.variants), ab.test_fraction)


def _no_test_decision(now: datetime) -> dict[str, Any]:
    return {
        "winner": 0,
        "manual": False,
        "significant": False,
        "reason": "nobody was in the test pool: variant 0 goes to everyone",
        "decided_at": now.isoformat(),
    }


def _send_at_sql(schedule: ScheduleSpec) -> tuple[str, dict[str, Any]]:
    """Each included recipient's send instant, as SQL over the contact `c`: none (at
    once), the schedule's moment, or the local time in the contact's zone (a zone
    PostgreSQL does not know, or none, counts as the default; a default it does not
    know, though Python's tzdata may, as UTC: one campaign must not stop the others)."""
    if schedule.when is When.AT:
        return "CAST(:send_at AS timestamptz)", {"send_at": schedule.send_at}
    if schedule.when is When.LOCAL:
        day, moment = local_date(schedule), local_time(schedule)
        assert day is not None and moment is not None  # checked when scheduled
        local = datetime.combine(day, moment)  # naive: a wall-clock time
        known = "IN (SELECT name FROM pg_timezone_names)"
        zone = (
            f"CASE WHEN c.timezone {known} THEN c.timezone "
            f"WHEN CAST(:default_zone AS text) {known} THEN CAST(:default_zone AS text) "
            "ELSE 'UTC' END"
        )
        expression = f"(CAST(:local AS timestamp) AT TIME ZONE ({zone}))"
        return expression, {"local": local, "default_zone": schedule.default_time_zone or "UTC"}
    return "CAST(NULL AS timestamptz)", {}


class Pool(enum.Enum):
    """Whom a set of parts carries: everyone included (no A/B test), the test pool (each
    their variant), or the remainder (the winner)."""

    ALL = ""
    TEST = "AND r.variant IS NOT NULL"
    REMAINDER = "AND r.variant IS NULL"


async def _make_parts(
    session: AsyncSession,
    campaign_id: str,
    schedule: ScheduleSpec,
    pool: Pool,
    *,
    winner: int | None = None,
) -> int:
    """One part per (variant, send instant) of `pool`, numbered on from the campaign's
    parts; each recipient told their part. The remainder's parts carry `winner` and keep
    the schedule's instants (one already past goes at once). The number of parts made."""
    send_at, params = _send_at_sql(schedule)
    remainder = pool is Pool.REMAINDER
    variant = "CAST(:winner AS smallint)" if remainder else "r.variant"
    params |= {"campaign": campaign_id, "winner": winner, "remainder": remainder}
    included = (
        "FROM marketing_campaign_recipient r JOIN marketing_contact c ON c.id = r.contact_id "
        f"WHERE r.campaign_id = :campaign AND r.decision = 'included' {pool.value}"
    )
    first = (
        "(SELECT coalesce(max(part) + 1, 0) FROM marketing_campaign_part "
        "WHERE campaign_id = :campaign)"
    )
    inserted = await session.execute(
        text(
            "INSERT INTO marketing_campaign_part (campaign_id, part, variant, remainder, "
            "send_at, state, recipients, pages, pages_done, all_paged, imported, refused) "
            f"SELECT :campaign, {first} + row_number() OVER (ORDER BY variant NULLS LAST, "
            "send_at) - 1, variant, :remainder, send_at, 'FILLING', n, 0, 0, false, 0, 0 FROM ("
            f"SELECT {variant} AS variant, {send_at} AS send_at, count(*) AS n {included} "
            "GROUP BY 1, 2) g"
        ),
        params,
    )
    await session.execute(
        text(
            "UPDATE marketing_campaign_recipient r SET part = p.part "
            "FROM marketing_contact c, marketing_campaign_part p "
            f"WHERE c.id = r.contact_id AND r.campaign_id = :campaign "
            f"AND r.decision = 'included' AND r.part IS NULL {pool.value} "
            "AND p.campaign_id = :campaign AND p.remainder = :remainder "
            f"AND p.variant IS NOT DISTINCT FROM {variant} "
            f"AND p.send_at IS NOT DISTINCT FROM {send_at}"
        ),
        params,
    )
    return int(getattr(inserted, "rowcount", 0) or 0)


async def start_remainder(
    session: AsyncSession, campaign: Campaign, decision: dict[str, Any]
) -> None:
    """The A/B decision recorded, and the winner handed to everyone outside the test pool,
    at the schedule's instants (a local-time schedule: each zone's); SENT when there is
    nobody."""
    campaign.ab_decision = decision
    schedule = schedule_of(campaign.schedule)
    assert schedule is not None
    winner = int(decision["winner"])
    made = await _make_parts(session, campaign.id, schedule, Pool.REMAINDER, winner=winner)
    campaign.state = CampaignState.SENDING if made else CampaignState.SENT


# --- pages -----------------------------------------------------------------------------


def list_name(campaign: Campaign, part: CampaignPart) -> str:
    """The provider list (and campaign) of a part: named after the campaign, unique per
    part, so that either is found again by its name."""
    return f"{campaign.display_name[:120]} · {campaign.id} part {part.part}"


def page_message_id(campaign_id: str, part: int, sequence: int, attempt: int = 0) -> str:
    return campaign_ids.page_id(campaign_ids.part_key(campaign_id, part), sequence, attempt)


def send_message_id(campaign_id: str, part: int, attempt: int = 0) -> str:
    return campaign_ids.send_id(campaign_ids.part_key(campaign_id, part), attempt)


@dataclass(frozen=True)
class BuiltPage:
    sequence: int
    payload: bytes  # the CampaignAudiencePage
    count: int
    through: uuid.UUID | None  # the last contact id it carries
    attempt: int = 0


async def build_page(
    session: AsyncSession,
    campaign: Campaign,
    part: CampaignPart,
    *,
    sequence: int,
    after: uuid.UUID | None,
    through: uuid.UUID | None,
    limit: int | None,
    budget: int | None,
    url_for: Any,
    attempt: int = 0,
) -> BuiltPage:
    """The part's recipients with contact ids in (after, through] (no upper bound: the
    next `limit`), as many as fit in `budget` bytes (None: all), each with their
    preference link."""
    channel = ConsentType(Channel(campaign.channel.value).value)
    excluded = case(*exclusions(channel), else_=None).label("excluded")
    query = (
        select(*Contact.__table__.columns, excluded)
        .join(
            CampaignRecipient,
            (CampaignRecipient.contact_id == Contact.id)
            & (CampaignRecipient.campaign_id == campaign.id)
            & (CampaignRecipient.part == part.part),
        )
        .order_by(Contact.id)
        .limit(limit)
        # As a sync's chunk: a share lock, so the watermark read after covers every
        # change to these people committed before, and none after (chunks.py).
        .with_for_update(read=True, of=Contact)
    )
    if after is not None:
        query = query.where(Contact.id > after)
    if through is not None:
        query = query.where(Contact.id <= through)
    rows = (await (await session.connection()).execute(query)).all()
    message = bus_pb2.CampaignAudiencePage(
        campaign_id=campaign.id,
        part=part.part,
        sequence=sequence,
        list_name=list_name(campaign, part),
        list_id=part.list_id or "",
        outbox_sequence=await outbox_watermark(session),
        attempt=attempt,
    )
    size = 256
    await _note_no_longer_eligible(session, campaign.id, [r for r in rows if r.excluded])
    for row in rows:
        if row.excluded:
            continue
        recipient = message.recipients.add()
        fill_contact_payload(recipient.profile, cast(Row[Any], row))
        recipient.preferences_url = url_for(row.id)
        size += recipient.ByteSize() + 6
        if budget is not None and size > budget and len(message.recipients) > 1:
            del message.recipients[-1]
            break
    count = len(message.recipients)
    covered = _covered(rows, count, through)
    return BuiltPage(sequence, message.SerializeToString(), count, covered, attempt)


def _covered(rows: Sequence[Any], count: int, through: uuid.UUID | None) -> uuid.UUID | None:
    """The last contact id a page covers: a rebuilt page its range whole; a new one up to
    its last recipient when the budget cut it short, else every row read (the excluded
    among them too); None when no row was left (the part is paged)."""
    if through is not None:
        return through
    eligible = [row for row in rows if not row.excluded]
    if count < len(eligible):
        return eligible[count - 1].id if count else None
    return rows[-1].id if rows else None


async def _note_no_longer_eligible(
    session: AsyncSession, campaign_id: str, rows: Sequence[Any]
) -> None:
    """Recipients decided `included` who are excluded by the time their page is built (a
    withdrawal, a suppression, a lost phone or device meanwhile): not handed over, and why
    on their decision (the first reason kept)."""
    if not rows:
        return
    await session.execute(
        text(
            "UPDATE marketing_campaign_recipient r SET failure = 'no longer eligible at the "
            "send: ' || x.reason FROM unnest(CAST(:ids AS uuid[]), CAST(:reasons AS text[])) "
            "AS x(contact_id, reason) WHERE r.campaign_id = :campaign "
            "AND r.contact_id = x.contact_id AND r.failure IS NULL"
        ),
        {
            "ids": [row.id for row in rows],
            "reasons": [str(row.excluded) for row in rows],
            "campaign": campaign_id,
        },
    )


async def rebuild_page(
    session: AsyncSession,
    campaign: Campaign,
    part: CampaignPart,
    page: CampaignPage,
    url_for: Any,
) -> BuiltPage:
    """A page written down, built again for its latest attempt: its range whole (a smaller
    page setting or budget now must not leave its last recipients out, since the next page
    begins after it)."""
    return await build_page(
        session,
        campaign,
        part,
        sequence=page.sequence,
        after=page.after,
        through=page.through,
        limit=None,
        budget=None,
        url_for=url_for,
        attempt=page.failures,
    )


async def write_page_down(
    session: AsyncSession, part: CampaignPart, page: BuiltPage, after: uuid.UUID | None
) -> None:
    """The page is the part's next: written down before it is published."""
    assert page.through is not None
    session.add(
        CampaignPage(
            campaign_id=part.campaign_id,
            part=part.part,
            sequence=page.sequence,
            after=after,
            through=page.through,
            recipients=page.count,
        )
    )
    part.pages = page.sequence
    part.published_through = page.through


async def unpublished_page(session: AsyncSession, part: CampaignPart) -> CampaignPage | None:
    return (
        await session.scalars(
            select(CampaignPage)
            .where(
                CampaignPage.campaign_id == part.campaign_id,
                CampaignPage.part == part.part,
                CampaignPage.published_at.is_(None),
            )
            .order_by(CampaignPage.sequence)
            .limit(1)
        )
    ).first()


async def stale_pages(session: AsyncSession, published_before: datetime) -> Sequence[CampaignPage]:
    """Pages of parts still filling, published before then and not reported, locked."""
    return (
        await session.scalars(
            select(CampaignPage)
            .join(
                CampaignPart,
                (CampaignPart.campaign_id == CampaignPage.campaign_id)
                & (CampaignPart.part == CampaignPage.part),
            )
            .where(
                CampaignPart.state == CampaignPartState.FILLING,
                CampaignPage.done_at.is_(None),
                CampaignPage.published_at < published_before,
            )
            .with_for_update(of=CampaignPage, skip_locked=True)
        )
    ).all()


async def mark_published(
    session: AsyncSession, campaign_id: str, part: int, sequence: int, now: datetime
) -> None:
    await session.execute(
        update(CampaignPage)
        .where(
            CampaignPage.campaign_id == campaign_id,
            CampaignPage.part == part,
            CampaignPage.sequence == sequence,
        )
        .values(published_at=now)
    )


# --- the send request -------------------------------------------------------------------


def content_for(campaign: Campaign, part: CampaignPart) -> Content:
    """The content a part carries: the campaign's, or its variant's (the winner's)."""
    if part.variant is None:
        spec = content_of(campaign.content)
    else:
        ab = ab_test_of(campaign.ab_test)
        assert ab is not None
        spec = ab.variants[part.variant]
    assert spec is not None
    v = Violations()
    channel = Channel(campaign.channel.value)
    parsed = parse_content(v, "", channel, spec.subject, spec.body)
    assert parsed is not None, "content was checked when the campaign was scheduled"
    return parsed


def send_request(
    campaign: Campaign, part: CampaignPart, sender: Sender, now: datetime
) -> bus_pb2.CampaignSendRequest:
    content = content_for(campaign, part)
    request = bus_pb2.CampaignSendRequest(
        campaign_id=campaign.id,
        part=part.part,
        name=list_name(campaign, part),  # the campaign is named as its list
        list_name=list_name(campaign, part),
        list_id=part.list_id or "",
        attempt=part.send_failures,
        channel=_BUS_CHANNEL[campaign.channel.value],
        from_email=sender.from_email,
        from_label=sender.from_label,
        reply_to=sender.reply_to,
    )
    if content.subject is not None:
        _fill_template(request.subject, content.subject)
    _fill_template(request.body, content.body)
    if part.send_at is not None and part.send_at > now:
        request.send_time.FromDatetime(part.send_at)
    return request


def _fill_template(parts: Any, template: Template) -> None:
    for piece in template.parts:
        added = parts.add()
        if isinstance(piece, Text):
            added.text = piece.text
        else:
            added.variable.path.extend(piece.path)
            if piece.fallback is not None:
                added.variable.fallback = piece.fallback


async def parts_of(session: AsyncSession, campaign_id: str) -> Sequence[CampaignPart]:
    return (
        await session.scalars(
            select(CampaignPart)
            .where(CampaignPart.campaign_id == campaign_id)
            .order_by(CampaignPart.part)
        )
    ).all()
