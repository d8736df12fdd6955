"""Campaigns as resources: create (a draft), read, list, change while not yet sent,
schedule, cancel.

    DRAFT ──ScheduleCampaign──▶ SCHEDULED ──its time──▶ SENDING ─▶ (TESTING ─▶) SENT
      │                            │                       └──────▶ FAILED
      └──────CancelCampaign────────┴──▶ CANCELLED  (also from TESTING)

UpdateCampaign changes a draft or a scheduled campaign; a scheduled one stays whole
(content, audience, schedule). The channel never changes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.campaigns import progress
from service.campaigns.audience import decision_counts
from service.campaigns.content import Channel
from service.campaigns.sending import due_at, parts_of
from service.campaigns.spec import (
    CampaignSpec,
    Checked,
    ScheduleSpec,
    ab_test_document,
    ab_test_of,
    check_spec,
    content_document,
    content_of,
    schedule_document,
    schedule_of,
)
from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.errors import AlreadyExistsError, FailedPreconditionError, NotFoundError, Violations
from service.segments.names import parse_short_name, segment_name, valid_segment_id
from service.storage.database import Database
from service.storage.models import (
    Campaign,
    CampaignChannel,
    CampaignPart,
    Segment,
)
from service.storage.models import CampaignState as CampaignState  # handlers name states by it

NAME_PREFIX = "campaigns/"
EDITABLE = frozenset({CampaignState.DRAFT, CampaignState.SCHEDULED})
CANCELLABLE = frozenset({CampaignState.DRAFT, CampaignState.SCHEDULED, CampaignState.TESTING})
UPDATABLE = ("display_name", "audience", "content", "ab_test", "schedule")
# How long before a campaign's time its send begins (MARKETING_CAMPAIGN_UPLOAD_LEAD_S).
DEFAULT_UPLOAD_LEAD = timedelta(minutes=30)
_PAGES = Paging(scope="campaigns", key=(KeyKind.TIME, KeyKind.NAME))


@dataclass(frozen=True)
class CampaignView:
    id: str
    spec: CampaignSpec
    state: CampaignState
    failure: str | None
    created_at: datetime
    updated_at: datetime
    send_start_at: datetime | None
    ab_decision: dict[str, Any] | None = None
    counts: dict[str, int] | None = None  # each decision's recipients, once resolved
    parts: tuple[PartView, ...] = ()  # the provider campaigns it was sent as


@dataclass(frozen=True)
class PartView:
    """One provider campaign of ours, as callers see it."""

    part: int
    variant: int | None
    remainder: bool
    send_at: datetime | None
    state: str
    recipients: int
    imported: int
    refused: int
    list_id: str
    provider_campaign_id: str
    error: str


def part_view(row: CampaignPart) -> PartView:
    return PartView(
        row.part,
        row.variant,
        row.remainder,
        row.send_at,
        row.state,
        row.recipients,
        row.imported,
        row.refused,
        row.list_id or "",
        row.provider_campaign_id or "",
        row.error or "",
    )


@dataclass(frozen=True)
class CampaignPage:
    campaigns: list[CampaignView]
    next_page_token: str


def campaign_name(campaign_id: str) -> str:
    return f"{NAME_PREFIX}{campaign_id}"


def parse_campaign_name(v: Violations, field: str, name: str) -> str | None:
    return parse_short_name(v, field, name, NAME_PREFIX, "campaign")


def view_of(row: Campaign) -> CampaignView:
    spec = CampaignSpec(
        display_name=row.display_name,
        channel=Channel(row.channel.value),
        audience=segment_name(row.audience),
        content=content_of(row.content),
        ab_test=ab_test_of(row.ab_test),
        schedule=schedule_of(row.schedule),
    )
    return CampaignView(
        row.id,
        spec,
        row.state,
        row.failure,
        row.created_at,
        row.updated_at,
        row.send_start_at,
        row.ab_decision,
    )


async def create_campaign(
    db: Database, spec: CampaignSpec, *, campaign_id: str, now: datetime
) -> CampaignView:
    v = Violations()
    if campaign_id and not valid_segment_id(campaign_id):
        v.add("campaign_id", "INVALID_ID", "[a-z][a-z0-9-]{0,62}")
    checked = check_spec(v, spec, complete=False, now=now)
    v.raise_if_any()
    assert checked is not None and spec.channel is not None
    campaign_id = campaign_id or f"campaign-{uuid.uuid4().hex[:16]}"
    async with db.transaction() as session:
        await _check_audience(session, checked, "campaign.audience")
        if await session.get(Campaign, campaign_id) is not None:
            raise AlreadyExistsError(field="campaign_id", description=f"{campaign_id} is taken")
        row = Campaign(
            id=campaign_id,
            channel=CampaignChannel(spec.channel.value),
            state=CampaignState.DRAFT,
            created_at=now,
            updated_at=now,
        )
        _write(row, spec, checked)
        session.add(row)
        await session.flush()
        return view_of(row)


async def get_campaign(db: Database, name: str) -> CampaignView:
    campaign_id = _parsed(name)
    async with db.transaction() as session:
        view = view_of(await _found(session, campaign_id, name))
        counts = await decision_counts(session, campaign_id)
        parts = tuple(part_view(row) for row in await parts_of(session, campaign_id))
        return replace(view, counts=counts or None, parts=parts)


async def list_campaigns(
    db: Database, tokens: PageTokens, *, page_size: int, page_token: str
) -> CampaignPage:
    v = Violations()
    page = tokens.request(v, _PAGES, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    async with db.transaction() as session:
        rows, token = await read_page(
            session,
            tokens,
            _PAGES,
            page,
            select(Campaign),
            (Campaign.created_at, Campaign.id),
            descending=True,
        )
        return CampaignPage([view_of(row) for row in rows], token)


async def update_campaign(
    db: Database,
    name: str,
    changes: CampaignSpec,
    paths: Sequence[str],
    *,
    now: datetime,
    lead: timedelta = DEFAULT_UPLOAD_LEAD,
) -> CampaignView:
    v = Violations()
    campaign_id = parse_campaign_name(v, "campaign.name", name)
    if not paths:
        v.add("update_mask", "REQUIRED", f"name the fields to change: {', '.join(UPDATABLE)}")
    for path in paths:
        if path == "channel":
            v.add("update_mask", "IMMUTABLE", "a campaign's channel cannot change")
        elif path not in UPDATABLE:
            v.add("update_mask", "UNKNOWN_FIELD", f"{path!r}: one of {', '.join(UPDATABLE)}")
    v.raise_if_any()
    assert campaign_id is not None
    async with db.transaction() as session:
        row = await _found(session, campaign_id, name, lock=True)
        _require_editable(row)
        spec = view_of(row).spec
        for path in paths:
            spec = replace(spec, **{path: getattr(changes, path)})
        v = Violations()
        scheduled = row.state is CampaignState.SCHEDULED
        checked = check_spec(v, spec, complete=scheduled, now=now)
        v.raise_if_any()
        assert checked is not None
        await _check_audience(session, checked, "campaign.audience")
        _write(row, spec, checked)
        if scheduled:
            assert spec.schedule is not None
            row.due_at = due_at(spec.schedule, now, lead)
        row.updated_at = now
        return view_of(row)


async def schedule_campaign(
    db: Database,
    name: str,
    schedule: ScheduleSpec | None,
    *,
    now: datetime,
    lead: timedelta = DEFAULT_UPLOAD_LEAD,
) -> CampaignView:
    campaign_id = _parsed(name)
    async with db.transaction() as session:
        row = await _found(session, campaign_id, name, lock=True)
        _require_editable(row)
        spec = view_of(row).spec
        if schedule is not None:
            spec = replace(spec, schedule=schedule)
        v = Violations()
        checked = check_spec(v, spec, complete=True, now=now)
        v.raise_if_any()
        assert checked is not None
        await _check_audience(session, checked, "campaign.audience")
        _write(row, spec, checked)
        row.state = CampaignState.SCHEDULED
        assert spec.schedule is not None
        row.due_at = due_at(spec.schedule, now, lead)
        row.updated_at = now
        return view_of(row)


async def cancel_campaign(db: Database, name: str, *, now: datetime) -> CampaignView:
    campaign_id = _parsed(name)
    async with db.transaction() as session:
        row = await _found(session, campaign_id, name, lock=True)
        if row.state is CampaignState.CANCELLED:
            return view_of(row)
        if row.state not in CANCELLABLE:
            raise FailedPreconditionError(
                reason="CAMPAIGN_NOT_CANCELLABLE",
                subject=name,
                description=f"a campaign {row.state.value.lower()} cannot be cancelled",
            )
        if row.state is CampaignState.TESTING:
            await progress.note_unsent(
                session, campaign_id, None, "the campaign was cancelled before the winner went"
            )
        row.state = CampaignState.CANCELLED
        row.due_at = None
        row.updated_at = now
        return view_of(row)


async def choose_winner(db: Database, name: str, variant: int, *, now: datetime) -> CampaignView:
    """The A/B winner by hand, while the test runs: sent to the remainder at once."""
    campaign_id = _parsed(name)
    async with db.transaction() as session:
        row = await _found(session, campaign_id, name, lock=True)
        if row.state is not CampaignState.TESTING:
            raise FailedPreconditionError(
                reason="CAMPAIGN_NOT_TESTING",
                subject=name,
                description=f"a campaign {row.state.value.lower()} has no A/B test running",
            )
        variants = len((row.ab_test or {}).get("variants", []))
        if not 0 <= variant < variants:
            v = Violations()
            v.add("variant", "OUT_OF_RANGE", f"one of the test's variants, 0 to {variants - 1}")
            v.raise_if_any()
        await progress.decide(session, row, now, override=variant)
        return view_of(row)


def _parsed(name: str) -> str:
    v = Violations()
    campaign_id = parse_campaign_name(v, "name", name)
    v.raise_if_any()
    assert campaign_id is not None
    return campaign_id


async def _found(
    session: AsyncSession, campaign_id: str, name: str, *, lock: bool = False
) -> Campaign:
    row = await session.get(Campaign, campaign_id, with_for_update=lock)
    if row is None:
        raise NotFoundError(resource_type="campaign", resource_name=name)
    return row


def _require_editable(row: Campaign) -> None:
    if row.state not in EDITABLE:
        raise FailedPreconditionError(
            reason="CAMPAIGN_NOT_EDITABLE",
            subject=campaign_name(row.id),
            description=f"a campaign {row.state.value.lower()} cannot change",
        )


async def _check_audience(session: AsyncSession, checked: Checked, field: str) -> None:
    if await session.get(Segment, checked.segment_id) is None:
        v = Violations()
        v.add(field, "NOT_FOUND", f"no segment {segment_name(checked.segment_id)}")
        v.raise_if_any()


def _write(row: Campaign, spec: CampaignSpec, checked: Checked) -> None:
    row.display_name = spec.display_name
    row.audience = checked.segment_id
    row.content = content_document(spec.content)
    row.ab_test = ab_test_document(spec.ab_test)
    row.schedule = schedule_document(spec.schedule)
