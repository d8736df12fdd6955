"""The steps of one catalogue refresh at Klaviyo (catalogue.py says what each reads): email
campaigns, SMS campaigns, flows; then, for figures, the conversion metric (once found, kept
for the client's life), one campaign-values-report and one flow-values-report. Each list
page is paced in its endpoint's bucket; a report is one request, reserved by the gate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import httpx

from dispatcher.providers.base import RateBucket
from dispatcher.providers.catalogue import (
    CatalogueDraft,
    CatalogueStatus,
    CatalogueStep,
    Channel,
    Figures,
)
from dispatcher.providers.errors import RetryableProviderError
from dispatcher.providers.klaviyo import catalogue, reading
from dispatcher.providers.klaviyo.catalogue import (
    CAMPAIGN_VALUES,
    CAMPAIGN_VALUES_REPORTS,
    FIND_CONVERSION_METRIC,
    FLOW_VALUES,
    FLOW_VALUES_REPORTS,
    LIST_CAMPAIGNS,
    LIST_FLOWS,
)
from dispatcher.providers.klaviyo.limits import CAMPAIGNS, FLOWS, METRICS

# (operation, path or next-page URL, buckets, query) -> the JSON:API collection
GetJson = Callable[[str, str, Sequence[RateBucket], dict[str, str] | None], Awaitable[Any]]
Post = Callable[[str, dict[str, Any]], Awaitable[httpx.Response]]
_REPORTED = frozenset({CatalogueStatus.SENDING, CatalogueStatus.SENT})


class KlaviyoCatalogue:
    def __init__(self, get_json: GetJson, post: Post) -> None:
        self._get_json = get_json
        self._post = post
        self._metric_id: str | None = None

    def steps(self) -> list[CatalogueStep]:
        return [
            *(
                CatalogueStep(LIST_CAMPAIGNS, partial(self._campaigns, channel))
                for channel in catalogue.CAMPAIGN_CHANNELS
            ),
            CatalogueStep(LIST_FLOWS, self._flows),
            CatalogueStep(
                FIND_CONVERSION_METRIC,
                self._find_metric,
                figures=True,
                needed=lambda draft: self._metric_id is None and _sent_any(draft),
            ),
            CatalogueStep(
                CAMPAIGN_VALUES,
                self._campaign_values,
                figures=True,
                needed=lambda draft: self._metric_id is not None and _sent_campaigns(draft),
            ),
            CatalogueStep(
                FLOW_VALUES,
                self._flow_values,
                figures=True,
                needed=lambda draft: self._metric_id is not None and bool(draft.flows),
            ),
        ]

    async def _campaigns(self, channel: Channel, draft: CatalogueDraft) -> None:
        query = catalogue.campaigns_query(channel)
        async for page in self._pages(LIST_CAMPAIGNS, catalogue.CAMPAIGNS, CAMPAIGNS, query):
            for campaign in _read(catalogue.campaigns, page, channel):
                draft.campaigns[campaign.id] = campaign

    async def _flows(self, draft: CatalogueDraft) -> None:
        async for page in self._pages(LIST_FLOWS, catalogue.FLOWS, FLOWS, None):
            for flow in _read(catalogue.flows, page):
                draft.flows[flow.id] = flow

    async def _find_metric(self, draft: CatalogueDraft) -> None:
        names: dict[str, str] = {}
        async for page in self._pages(FIND_CONVERSION_METRIC, catalogue.METRICS, METRICS, None):
            for name, metric_id in _read(catalogue.metric_ids, page).items():
                names.setdefault(name, metric_id)
        found = [names[name] for name in catalogue.CONVERSION_METRICS if name in names]
        self._metric_id = found[0] if found else None

    async def _campaign_values(self, draft: CatalogueDraft) -> None:
        figures = await self._report(
            CAMPAIGN_VALUES_REPORTS, "campaign-values-report", "campaign_id"
        )
        for campaign_id, found in figures.items():
            if campaign_id in draft.campaigns:
                draft.campaigns[campaign_id] = replace(draft.campaigns[campaign_id], figures=found)

    async def _flow_values(self, draft: CatalogueDraft) -> None:
        figures = await self._report(FLOW_VALUES_REPORTS, "flow-values-report", "flow_id")
        for flow_id, found in figures.items():
            if flow_id in draft.flows:
                draft.flows[flow_id] = replace(draft.flows[flow_id], figures=found)

    async def _report(self, path: str, kind: str, grouping: str) -> dict[str, Figures]:
        assert self._metric_id is not None  # the step is needed only then
        response = await self._post(path, catalogue.report_body(kind, self._metric_id))
        try:
            return catalogue.report_figures(response.json(), grouping, kind)
        except ValueError as exc:  # a 2xx that is no report (a proxy's page, say)
            raise RetryableProviderError(
                f"Klaviyo POST {path}: HTTP {response.status_code}: {exc}",
                status=response.status_code,
                code="invalid_response",
            ) from exc

    async def _pages(
        self,
        operation: str,
        path: str,
        buckets: Sequence[RateBucket],
        query: dict[str, str] | None,
    ) -> AsyncIterator[Any]:
        """Every page of a collection, following links.next (which carries the query)."""
        url: str | None = path
        while url is not None:
            page = await self._get_json(operation, url, buckets, query)
            yield page
            url, query = reading.next_page(page), None


def _read(parse: Callable[..., Any], page: Any, *args: Any) -> Any:
    """`parse(page, *args)`; a page it cannot read is retryable (reading changes nothing)."""
    try:
        return parse(page, *args)
    except ValueError as exc:
        raise RetryableProviderError(
            f"Klaviyo catalogue: unreadable page: {exc}", code="invalid_response"
        ) from exc


def _sent_campaigns(draft: CatalogueDraft) -> bool:
    return any(c.status in _REPORTED for c in draft.campaigns.values())


def _sent_any(draft: CatalogueDraft) -> bool:
    return _sent_campaigns(draft) or bool(draft.flows)
