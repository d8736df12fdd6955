"""ActiveCampaign's campaigns and automations, with the counters it keeps on each
(shared/PROVIDERS-API.md, "Campaigns and messages", "Automations"), read into the
provider-neutral catalogue (dispatcher/providers/catalogue.py): two steps of one refresh,
each paging by limit/offset (100 a page) and each page one request in the account's bucket.

    GET /api/3/campaigns?limit=100&offset=N   campaigns[], meta.total; every counter a string:
                                              send_amt, opens, uniqueopens, linkclicks, ...
    GET /api/3/automations?limit=100&offset=N automations[{id, name, status, entered, exited}]

Statuses: an automation's "1" is active (it sends: SENDING), "2" inactive (PAUSED). No source
found explains a campaign's numeric status (PROVIDERS-API.md); these are API v1's
`campaign_status` values, ASSUMED unchanged in v3: 0 draft, 1 scheduled, 2 sending, 3 paused,
4 stopped, 5 completed, 6 disabled, 7 pending approval. Every campaign is email here (the
v3 campaigns are email broadcasts; SMS broadcasts are not in /campaigns).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dispatcher.providers.activecampaign.http import ApiHttp, JsonObject, as_count, records
from dispatcher.providers.activecampaign.limits import LIST_AUTOMATIONS, LIST_CAMPAIGNS
from dispatcher.providers.catalogue import (
    CatalogueCampaign,
    CatalogueDraft,
    CatalogueFlow,
    CatalogueStatus,
    CatalogueStep,
    Channel,
    Figures,
)

PAGE = 100
CAMPAIGN_COUNTERS = (
    "send_amt",
    "total_amt",
    "opens",
    "uniqueopens",
    "linkclicks",
    "uniquelinkclicks",
    "subscriberclicks",
    "forwards",
    "uniqueforwards",
    "hardbounces",
    "softbounces",
    "unsubscribes",
    "unsubreasons",
    "updates",
    "socialshares",
    "replies",
    "uniquereplies",
)
AUTOMATION_COUNTERS = ("entered", "exited")
_CAMPAIGN_STATUSES = {
    "0": CatalogueStatus.DRAFT,
    "1": CatalogueStatus.SCHEDULED,
    "2": CatalogueStatus.SENDING,
    "3": CatalogueStatus.PAUSED,
    "4": CatalogueStatus.ARCHIVED,  # stopped
    "5": CatalogueStatus.SENT,
    "6": CatalogueStatus.ARCHIVED,  # disabled
    "7": CatalogueStatus.DRAFT,  # pending approval
}
_AUTOMATION_STATUSES = {"1": CatalogueStatus.SENDING, "2": CatalogueStatus.PAUSED}


class ActiveCampaignCatalogue:
    def __init__(self, api: ApiHttp) -> None:
        self._api = api

    def steps(self) -> list[CatalogueStep]:
        return [
            CatalogueStep(LIST_CAMPAIGNS, self._campaigns),
            CatalogueStep(LIST_AUTOMATIONS, self._automations),
        ]

    async def _campaigns(self, draft: CatalogueDraft) -> None:
        for row in await self._all("/campaigns", "campaigns", LIST_CAMPAIGNS):
            campaign = campaign_of(row)
            draft.campaigns[campaign.id] = campaign

    async def _automations(self, draft: CatalogueDraft) -> None:
        for row in await self._all("/automations", "automations", LIST_AUTOMATIONS):
            flow = automation_of(row)
            draft.flows[flow.id] = flow

    async def _all(self, path: str, key: str, operation: str) -> list[JsonObject]:
        """Every page's records, until one is short or `meta.total` is reached."""
        found: list[JsonObject] = []
        while True:
            params = {"limit": PAGE, "offset": len(found)}
            reply = await self._api.call("GET", path, operation=operation, params=params)
            page = records(reply, key)
            found += page
            total = as_count(((reply or {}).get("meta") or {}).get("total"))
            if len(page) < PAGE or (total and len(found) >= total):
                return found


def campaign_of(row: JsonObject) -> CatalogueCampaign:
    status = str(row.get("status") or "")
    return CatalogueCampaign(
        id=str(row.get("id") or ""),
        name=str(row.get("name") or ""),
        channel=Channel.EMAIL,
        status=_CAMPAIGN_STATUSES.get(status, CatalogueStatus.DRAFT),
        provider_status=status,
        send_time=_time(row.get("sdate")),
        figures=_counters(row, CAMPAIGN_COUNTERS, "campaigns"),
    )


def automation_of(row: JsonObject) -> CatalogueFlow:
    status = str(row.get("status") or "")
    return CatalogueFlow(
        id=str(row.get("id") or ""),
        name=str(row.get("name") or ""),
        status=_AUTOMATION_STATUSES.get(status, CatalogueStatus.DRAFT),
        provider_status=status,
        figures=_counters(row, AUTOMATION_COUNTERS, "automations"),
    )


def _counters(row: JsonObject, names: tuple[str, ...], source: str) -> Figures | None:
    """The counters the row has (strings, as ActiveCampaign sends them); None without any."""
    present = {name: float(as_count(row[name])) for name in names if row.get(name) is not None}
    return Figures(source, "", present) if present else None


def _time(value: Any) -> datetime | None:
    """ActiveCampaign's dates: ISO 8601 with an offset ("2026-07-01T10:00:00-05:00"); one
    without is taken as UTC; none (null, "", "0000-00-00 ...") is None."""
    if not isinstance(value, str) or not value or value.startswith("0000"):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
