"""Recording the dispatcher's catalogue refreshes (bus.proto ProviderCatalogue) in the
campaign cache: each campaign and flow upserted by (type, provider id) with its name,
status, the provider's status and its figures; figures a refresh did not read are left as
they were. A refresh older than one recorded already is dropped (a redelivery, say). Once a
refresh's last message is recorded, what it no longer lists is forgotten: the provider
deleted it (or the account changed provider)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from marketing.bus.v1 import bus_pb2
from sqlalchemy import case, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.models import CampaignCache, CampaignStatus, CampaignType

# Rows a statement upserts at most (about ten parameters each, within PostgreSQL's 32,767).
UPSERT_BATCH = 1000
_TYPES = {
    bus_pb2.CATALOGUE_CHANNEL_EMAIL: CampaignType.EMAIL,
    bus_pb2.CATALOGUE_CHANNEL_SMS: CampaignType.SMS,
    bus_pb2.CATALOGUE_CHANNEL_PUSH: CampaignType.PUSH,
}
# An unknown status (UNSPECIFIED, or a newer dispatcher's) is recorded as a draft: not
# known to have been sent.
_STATUSES = {
    bus_pb2.CATALOGUE_STATUS_DRAFT: CampaignStatus.DRAFT,
    bus_pb2.CATALOGUE_STATUS_SCHEDULED: CampaignStatus.SCHEDULED,
    bus_pb2.CATALOGUE_STATUS_SENDING: CampaignStatus.SENDING,
    bus_pb2.CATALOGUE_STATUS_SENT: CampaignStatus.SENT,
    bus_pb2.CATALOGUE_STATUS_PAUSED: CampaignStatus.PAUSED,
    bus_pb2.CATALOGUE_STATUS_ARCHIVED: CampaignStatus.ARCHIVED,
}


async def record(session: AsyncSession, catalogue: bus_pb2.ProviderCatalogue) -> bool:
    """Record one message of a refresh; False when it was older than what is cached."""
    fetched = catalogue.fetch_time.ToDatetime(tzinfo=UTC)
    newest = await session.scalar(select(func.max(CampaignCache.last_fetched_at)))
    if newest is not None and newest > fetched:
        return False
    rows = {(row["type"], row["external_id"]): row for row in _rows(catalogue, fetched)}
    values = list(rows.values())
    for start in range(0, len(values), UPSERT_BATCH):
        await session.execute(_upsert(values[start : start + UPSERT_BATCH]))
    if catalogue.part >= catalogue.parts - 1:  # the last (or only) message of the refresh
        await session.execute(delete(CampaignCache).where(CampaignCache.last_fetched_at < fetched))
    return True


def _rows(catalogue: bus_pb2.ProviderCatalogue, fetched: datetime) -> Iterator[dict[str, Any]]:
    common = {"provider": catalogue.provider, "last_fetched_at": fetched}
    for campaign in catalogue.campaigns:
        send_time = campaign.send_time if campaign.HasField("send_time") else None
        yield common | {
            "external_id": campaign.id,
            "name": campaign.name,
            "type": _TYPES.get(campaign.channel, CampaignType.EMAIL),
            "status": _STATUSES.get(campaign.status, CampaignStatus.DRAFT),
            "provider_status": campaign.provider_status,
            "send_time": None if send_time is None else send_time.ToDatetime(tzinfo=UTC),
            "trigger_type": "",
            "metrics": _figures(campaign, fetched),
        }
    for flow in catalogue.flows:
        yield common | {
            "external_id": flow.id,
            "name": flow.name,
            "type": CampaignType.FLOW,
            "status": _STATUSES.get(flow.status, CampaignStatus.DRAFT),
            "provider_status": flow.provider_status,
            "send_time": None,
            "trigger_type": flow.trigger_type,
            "metrics": _figures(flow, fetched),
        }


def _figures(
    item: bus_pb2.ProviderCampaign | bus_pb2.ProviderFlowInfo, fetched: datetime
) -> dict[str, Any]:
    """The `metrics` column's value: {} when this refresh read no figures for it."""
    if not item.HasField("figures"):
        return {}
    figures = item.figures
    return {
        "source": figures.source,
        "timeframe": figures.timeframe,
        "statistics": dict(figures.statistics),
        "fetch_time": fetched.isoformat(),
    }


def _upsert(values: list[dict[str, Any]]) -> Any:
    statement = insert(CampaignCache).values(values)
    new = statement.excluded
    kept_figures = case(
        (new.metrics == literal_column("'{}'::jsonb"), CampaignCache.metrics),
        else_=new.metrics,
    )
    return statement.on_conflict_do_update(
        constraint="uq_campaign_cache_type_external_id",
        set_={
            "name": new.name,
            "status": new.status,
            "provider": new.provider,
            "provider_status": new.provider_status,
            "send_time": new.send_time,
            "trigger_type": new.trigger_type,
            "metrics": kept_figures,
            "last_fetched_at": new.last_fetched_at,
            "updated_at": func.now(),
        },
        where=CampaignCache.last_fetched_at <= new.last_fetched_at,
    )
