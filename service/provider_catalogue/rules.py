"""The catalogue RPCs' use cases: the cached provider campaigns, filtered and paged, one of
them by id, and the provider's flows joined with ours (Klaviyo: our flow's
`klaviyo_flow_id`; ActiveCampaign: its `activecampaign_automation_id`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.errors import NotFoundError, Violations
from service.provider_catalogue.views import CatalogueEntryView, figures_view
from service.storage.database import Database
from service.storage.models import CampaignCache, CampaignStatus, CampaignType, Flow

# First cached first (the id breaks ties: one refresh caches many at one time).
CAMPAIGN_PAGES = Paging(scope="providerCampaigns", key=(KeyKind.TIME, KeyKind.UUID))
FLOW_PAGES = Paging(scope="providerFlows", key=(KeyKind.TIME, KeyKind.UUID))
_ORDER = (CampaignCache.created_at, CampaignCache.id)
KLAVIYO = "klaviyo"


@dataclass(frozen=True)
class CataloguePage:
    entries: list[CatalogueEntryView]
    next_page_token: str
    # When the provider was last read (the newest refresh recorded); None before the first.
    fetched_at: datetime | None


async def list_campaigns(
    db: Database,
    tokens: PageTokens,
    v: Violations,
    *,
    types: Sequence[CampaignType],
    statuses: Sequence[CampaignStatus],
    page_size: int,
    page_token: str,
) -> CataloguePage:
    page = tokens.request(v, CAMPAIGN_PAGES, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    query = _filtered(
        select(CampaignCache).where(CampaignCache.type != CampaignType.FLOW), types, statuses
    )
    async with db.transaction() as session:
        rows, token = await read_page(session, tokens, CAMPAIGN_PAGES, page, query, _ORDER)
        return CataloguePage([_view(row) for row in rows], token, await _newest(session))


async def get_campaign(db: Database, *, external_id: str, name: str) -> CatalogueEntryView:
    async with db.transaction() as session:
        row = await session.scalar(
            select(CampaignCache).where(
                CampaignCache.external_id == external_id,
                CampaignCache.type != CampaignType.FLOW,
            )
        )
    if row is None:
        raise NotFoundError(resource_type="ProviderCampaign", resource_name=name)
    return _view(row)


async def list_flows(
    db: Database,
    tokens: PageTokens,
    v: Violations,
    *,
    statuses: Sequence[CampaignStatus],
    page_size: int,
    page_token: str,
) -> CataloguePage:
    page = tokens.request(v, FLOW_PAGES, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    query = _filtered(
        select(CampaignCache).where(CampaignCache.type == CampaignType.FLOW), (), statuses
    )
    async with db.transaction() as session:
        rows, token = await read_page(session, tokens, FLOW_PAGES, page, query, _ORDER)
        linked = await _linked_flows(session, rows)
        views = [_view(row, linked.get((row.provider, row.external_id), ())) for row in rows]
        return CataloguePage(views, token, await _newest(session))


def _filtered(
    query: Select[CampaignCache],
    types: Sequence[CampaignType],
    statuses: Sequence[CampaignStatus],
) -> Select[CampaignCache]:
    if types:
        query = query.where(CampaignCache.type.in_(types))
    if statuses:
        query = query.where(CampaignCache.status.in_(statuses))
    return query


async def _linked_flows(
    session: AsyncSession, rows: Sequence[CampaignCache]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """(provider, provider flow id) -> the ids of our flows linked to it."""
    ids = [row.external_id for row in rows]
    if not ids:
        return {}
    found = await session.execute(
        select(Flow.id, Flow.klaviyo_flow_id, Flow.activecampaign_automation_id)
        .where(or_(Flow.klaviyo_flow_id.in_(ids), Flow.activecampaign_automation_id.in_(ids)))
        .order_by(Flow.id)
    )
    linked: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for flow_id, klaviyo_id, automation_id in found:
        if klaviyo_id:
            linked[KLAVIYO, klaviyo_id].append(flow_id)
        if automation_id:
            linked["activecampaign", automation_id].append(flow_id)
    return {key: tuple(flows) for key, flows in linked.items()}


async def _newest(session: AsyncSession) -> datetime | None:
    newest: datetime | None = await session.scalar(select(func.max(CampaignCache.last_fetched_at)))
    return newest


def _view(row: CampaignCache, flows: tuple[str, ...] = ()) -> CatalogueEntryView:
    return CatalogueEntryView(
        external_id=row.external_id,
        name=row.name,
        type=row.type,
        status=row.status,
        provider=row.provider,
        provider_status=row.provider_status,
        send_time=row.send_time,
        trigger_type=row.trigger_type,
        figures=figures_view(row.metrics),
        fetched_at=row.last_fetched_at,
        flows=flows,
    )
