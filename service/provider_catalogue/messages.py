"""Cached campaigns and flows between their gRPC messages and the domain: the list filters'
enums read, views written back as ProviderCampaign and ProviderFlowInfo."""

from __future__ import annotations

from marketing.v1 import provider_catalogue_pb2 as pc

from service.common.conversions import timestamp
from service.flows.names import flow_name
from service.provider_catalogue.names import campaign_name
from service.provider_catalogue.names import flow_name as provider_flow_name
from service.provider_catalogue.views import CatalogueEntryView, FiguresView
from service.storage.models import CampaignStatus, CampaignType

_TYPE_ENUMS = {
    CampaignType.EMAIL: pc.ProviderCampaign.TYPE_EMAIL,
    CampaignType.SMS: pc.ProviderCampaign.TYPE_SMS,
    CampaignType.PUSH: pc.ProviderCampaign.TYPE_PUSH,
}
TYPES = {number: kind for kind, number in _TYPE_ENUMS.items()}
_CAMPAIGN_STATUS_ENUMS = {
    CampaignStatus.DRAFT: pc.ProviderCampaign.STATUS_DRAFT,
    CampaignStatus.SCHEDULED: pc.ProviderCampaign.STATUS_SCHEDULED,
    CampaignStatus.SENDING: pc.ProviderCampaign.STATUS_SENDING,
    CampaignStatus.SENT: pc.ProviderCampaign.STATUS_SENT,
    CampaignStatus.PAUSED: pc.ProviderCampaign.STATUS_PAUSED,
    CampaignStatus.ARCHIVED: pc.ProviderCampaign.STATUS_ARCHIVED,
}
CAMPAIGN_STATUSES = {number: status for status, number in _CAMPAIGN_STATUS_ENUMS.items()}
# A flow is SENDING while live (the cache keeps the seed's CampaignStatus for both).
_FLOW_STATUS_ENUMS = {
    CampaignStatus.DRAFT: pc.ProviderFlowInfo.STATUS_DRAFT,
    CampaignStatus.SENDING: pc.ProviderFlowInfo.STATUS_LIVE,
    CampaignStatus.PAUSED: pc.ProviderFlowInfo.STATUS_PAUSED,
    CampaignStatus.ARCHIVED: pc.ProviderFlowInfo.STATUS_ARCHIVED,
}
FLOW_STATUSES = {number: status for status, number in _FLOW_STATUS_ENUMS.items()}


def campaign_message(view: CatalogueEntryView) -> pc.ProviderCampaign:
    return pc.ProviderCampaign(
        name=campaign_name(view.external_id),
        external_id=view.external_id,
        display_name=view.name,
        type=_TYPE_ENUMS.get(view.type, pc.ProviderCampaign.TYPE_UNSPECIFIED),
        status=_CAMPAIGN_STATUS_ENUMS[view.status],
        provider_status=view.provider_status,
        provider=view.provider,
        send_time=timestamp(view.send_time),
        figures=figures_message(view.figures),
        fetch_time=timestamp(view.fetched_at),
    )


def flow_info_message(view: CatalogueEntryView) -> pc.ProviderFlowInfo:
    return pc.ProviderFlowInfo(
        name=provider_flow_name(view.external_id),
        external_id=view.external_id,
        display_name=view.name,
        status=_FLOW_STATUS_ENUMS.get(view.status, pc.ProviderFlowInfo.STATUS_UNSPECIFIED),
        provider_status=view.provider_status,
        provider=view.provider,
        trigger_type=view.trigger_type,
        figures=figures_message(view.figures),
        fetch_time=timestamp(view.fetched_at),
        flows=[flow_name(flow_id) for flow_id in view.flows],
    )


def figures_message(figures: FiguresView | None) -> pc.ProviderFigures | None:
    if figures is None:
        return None
    return pc.ProviderFigures(
        source=figures.source,
        timeframe=figures.timeframe,
        statistics=figures.statistics,
        fetch_time=timestamp(figures.fetched_at),
    )
