"""A refresh's draft as the bus messages the service records (bus.proto ProviderCatalogue):
one message, or as many as the server's max_payload asks for, each with its share of the
campaigns and flows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from marketing.bus.v1 import bus_pb2
from marketing_runtime.timestamps import epoch_micros, to_timestamp

from dispatcher.providers.catalogue import (
    CatalogueCampaign,
    CatalogueDraft,
    CatalogueFlow,
    CatalogueStatus,
    Channel,
    Figures,
)

# Room left in each message for its headers and the envelope around the payload.
HEADROOM_BYTES = 1024
# What a repeated field's item adds besides its own bytes: its tag and length (and the
# part and parts fields set at the end), at most.
_FIELD_OVERHEAD = 6
_STATUSES = {
    CatalogueStatus.DRAFT: bus_pb2.CATALOGUE_STATUS_DRAFT,
    CatalogueStatus.SCHEDULED: bus_pb2.CATALOGUE_STATUS_SCHEDULED,
    CatalogueStatus.SENDING: bus_pb2.CATALOGUE_STATUS_SENDING,
    CatalogueStatus.SENT: bus_pb2.CATALOGUE_STATUS_SENT,
    CatalogueStatus.PAUSED: bus_pb2.CATALOGUE_STATUS_PAUSED,
    CatalogueStatus.ARCHIVED: bus_pb2.CATALOGUE_STATUS_ARCHIVED,
}
_CHANNELS = {
    Channel.EMAIL: bus_pb2.CATALOGUE_CHANNEL_EMAIL,
    Channel.SMS: bus_pb2.CATALOGUE_CHANNEL_SMS,
    Channel.PUSH: bus_pb2.CATALOGUE_CHANNEL_PUSH,
}


def catalogue_messages(
    provider: str, fetched_at: datetime, draft: CatalogueDraft, max_payload: int
) -> list[bus_pb2.ProviderCatalogue]:
    """The refresh as ProviderCatalogue messages of at most `max_payload` bytes (less the
    headroom) each, `part` and `parts` set; at least one, even for an empty catalogue."""
    limit = max(max_payload - HEADROOM_BYTES, 1)
    parts = [_empty(provider, fetched_at)]
    size = parts[0].ByteSize()
    items: list[bus_pb2.ProviderCampaign | bus_pb2.ProviderFlowInfo] = [
        *(campaign_message(c) for c in draft.campaigns.values()),
        *(flow_message(f) for f in draft.flows.values()),
    ]
    for item in items:
        grows = item.ByteSize() + _FIELD_OVERHEAD
        current = parts[-1]
        if size + grows > limit and (current.campaigns or current.flows):
            current = _empty(provider, fetched_at)
            parts.append(current)
            size = current.ByteSize()
        if isinstance(item, bus_pb2.ProviderCampaign):
            current.campaigns.append(item)
        else:
            current.flows.append(item)
        size += grows
    for index, part in enumerate(parts):
        part.part, part.parts = index, len(parts)
    return parts


def message_id(message: bus_pb2.ProviderCatalogue) -> str:
    """Nats-Msg-Id: a part published again (its ack lost) is stored once."""
    micros = epoch_micros(message.fetch_time.ToDatetime())
    return f"catalogue.{message.provider}.{micros}.{message.part}"


def campaign_message(campaign: CatalogueCampaign) -> bus_pb2.ProviderCampaign:
    message = bus_pb2.ProviderCampaign(
        id=campaign.id,
        name=campaign.name,
        channel=_CHANNELS[campaign.channel],
        status=_STATUSES[campaign.status],
        provider_status=campaign.provider_status,
    )
    if campaign.send_time is not None:
        message.send_time.CopyFrom(to_timestamp(campaign.send_time))
    if campaign.figures is not None:
        message.figures.CopyFrom(figures_message(campaign.figures))
    return message


def flow_message(flow: CatalogueFlow) -> bus_pb2.ProviderFlowInfo:
    message = bus_pb2.ProviderFlowInfo(
        id=flow.id,
        name=flow.name,
        status=_STATUSES[flow.status],
        provider_status=flow.provider_status,
        trigger_type=flow.trigger_type,
    )
    if flow.figures is not None:
        message.figures.CopyFrom(figures_message(flow.figures))
    return message


def figures_message(figures: Figures) -> bus_pb2.ProviderFigures:
    return bus_pb2.ProviderFigures(
        source=figures.source, timeframe=figures.timeframe, statistics=dict(figures.statistics)
    )


def _empty(provider: str, fetched_at: datetime) -> bus_pb2.ProviderCatalogue:
    return bus_pb2.ProviderCatalogue(provider=provider, fetch_time=to_timestamp(fetched_at))


def counts(messages: Sequence[bus_pb2.ProviderCatalogue]) -> tuple[int, int]:
    """Campaigns and flows in a refresh's messages."""
    return sum(len(m.campaigns) for m in messages), sum(len(m.flows) for m in messages)
