"""Catalogue RPCs: request messages to the cached provider campaigns and flows, views back
to messages."""

from __future__ import annotations

from marketing.v1 import service_pb2 as pb

from service.common.conversions import timestamp
from service.common.pagination import PageTokens
from service.common.validation import enum_values
from service.errors import Violations
from service.provider_catalogue import rules
from service.provider_catalogue.messages import (
    CAMPAIGN_STATUSES,
    FLOW_STATUSES,
    TYPES,
    campaign_message,
    flow_info_message,
)
from service.provider_catalogue.names import parse_campaign_name
from service.storage.database import Database


class ProviderCatalogueHandlers:
    def __init__(self, db: Database, tokens: PageTokens) -> None:
        self._db = db
        self._tokens = tokens

    async def list_campaigns(
        self, request: pb.ListProviderCampaignsRequest
    ) -> pb.ListProviderCampaignsResponse:
        v = Violations()
        page = await rules.list_campaigns(
            self._db,
            self._tokens,
            v,
            types=enum_values(v, "types", request.types, TYPES),
            statuses=enum_values(v, "statuses", request.statuses, CAMPAIGN_STATUSES),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListProviderCampaignsResponse(
            campaigns=[campaign_message(entry) for entry in page.entries],
            next_page_token=page.next_page_token,
            fetch_time=timestamp(page.fetched_at),
        )

    async def get_campaign(
        self, request: pb.GetProviderCampaignRequest
    ) -> pb.GetProviderCampaignResponse:
        v = Violations()
        external_id = parse_campaign_name(v, "name", request.name)
        v.raise_if_any()
        view = await rules.get_campaign(self._db, external_id=external_id, name=request.name)
        return pb.GetProviderCampaignResponse(campaign=campaign_message(view))

    async def list_flows(
        self, request: pb.ListProviderFlowsRequest
    ) -> pb.ListProviderFlowsResponse:
        v = Violations()
        page = await rules.list_flows(
            self._db,
            self._tokens,
            v,
            statuses=enum_values(v, "statuses", request.statuses, FLOW_STATUSES),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListProviderFlowsResponse(
            flows=[flow_info_message(entry) for entry in page.entries],
            next_page_token=page.next_page_token,
            fetch_time=timestamp(page.fetched_at),
        )
