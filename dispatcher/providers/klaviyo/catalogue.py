"""Klaviyo's campaigns and flows, and their figures (shared/PROVIDERS-API.md, "Campaigns",
"Flows", "Reporting", "Metrics"): the queries, the report bodies, and Klaviyo's answers read
into the provider-neutral catalogue (dispatcher/providers/catalogue.py). The steps that send
them are in catalogue_steps.py.

    GET  /api/campaigns?filter=equals(messages.channel,"email")   10/s, 150/m; the filter is
         (then "sms"), paged by links.next                          required by Klaviyo
    GET  /api/flows, paged by links.next                            3/s, 60/m
    GET  /api/metrics, paged: the conversion metric's id            10/s, 150/m
    POST /api/campaign-values-reports                               1/s, 2/m, 225/day each
    POST /api/flow-values-reports

A report covers every campaign (flow) sent in its timeframe, one result per campaign
(flow) message and channel (the default group_by); a campaign's figures are the sum of its
results. Only counts are asked for: rates are the caller's to compute from them (a sum of
rates means nothing). The conversion metric is the account's "Placed Order" (Klaviyo's
e-commerce integrations), else the `placed_order` our events create; without either the
reports are not asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from dispatcher.providers.catalogue import (
    CatalogueCampaign,
    CatalogueFlow,
    CatalogueStatus,
    Channel,
    Figures,
)

# The catalogue's operations, by the name the gate and the metrics give their endpoint.
LIST_CAMPAIGNS = "list_campaigns"
LIST_FLOWS = "list_flows"
FIND_CONVERSION_METRIC = "find_conversion_metric"
CAMPAIGN_VALUES = "campaign_values_report"
FLOW_VALUES = "flow_values_report"

CAMPAIGNS = "/api/campaigns"
FLOWS = "/api/flows"
METRICS = "/api/metrics"
CAMPAIGN_VALUES_REPORTS = "/api/campaign-values-reports"
FLOW_VALUES_REPORTS = "/api/flow-values-reports"
# The channels whose campaigns are listed: get_campaigns takes one per request.
CAMPAIGN_CHANNELS = {Channel.EMAIL: "email", Channel.SMS: "sms"}
# By preference: Klaviyo's e-commerce integrations' name, then the one our events carry.
CONVERSION_METRICS = ("Placed Order", "placed_order")
# A report's window: the longest it allows (one year).
TIMEFRAME = "last_365_days"
STATISTICS = (
    "recipients",
    "delivered",
    "opens",
    "opens_unique",
    "clicks",
    "clicks_unique",
    "bounced",
    "failed",
    "spam_complaints",
    "unsubscribes",
    "unsubscribe_uniques",
    "conversions",
    "conversion_uniques",
    "conversion_value",
)
_SENT = "sent"
_CAMPAIGN_STATUSES = {
    "draft": CatalogueStatus.DRAFT,
    "scheduled": CatalogueStatus.SCHEDULED,
    "preparing to schedule": CatalogueStatus.SCHEDULED,
    "sending": CatalogueStatus.SENDING,
    "preparing to send": CatalogueStatus.SENDING,
    "adding recipients": CatalogueStatus.SENDING,
    "sending segments": CatalogueStatus.SENDING,
    "queued without recipients": CatalogueStatus.SENDING,
    _SENT: CatalogueStatus.SENT,
    "variations sent": CatalogueStatus.SENT,
}
_FLOW_STATUSES = {
    "draft": CatalogueStatus.DRAFT,
    "manual": CatalogueStatus.PAUSED,
    "live": CatalogueStatus.SENDING,
}


def campaigns_query(channel: Channel) -> dict[str, str]:
    """get_campaigns needs a filter on the messages' channel (one channel a request)."""
    return {"filter": f'equals(messages.channel,"{CAMPAIGN_CHANNELS[channel]}")'}


def campaign_status(text: str, archived: bool) -> CatalogueStatus:
    """Klaviyo's 18 campaign statuses in the seed's six: every "Cancelled: ..." (and an
    archived campaign) is ARCHIVED, no longer in play; "Unknown" and anything new is DRAFT
    (not known to have been sent)."""
    if archived or text.lower().startswith("cancelled"):
        return CatalogueStatus.ARCHIVED
    return _CAMPAIGN_STATUSES.get(text.lower(), CatalogueStatus.DRAFT)


def flow_status(text: str, archived: bool) -> CatalogueStatus:
    """draft, manual (sends only when started by hand: PAUSED) and live (SENDING)."""
    if archived:
        return CatalogueStatus.ARCHIVED
    return _FLOW_STATUSES.get(text.lower(), CatalogueStatus.DRAFT)


def campaigns(document: Any, channel: Channel) -> list[CatalogueCampaign]:
    """The campaign resources of a get_campaigns page."""
    found = []
    for resource_id, attributes in _resources(document):
        status = str(attributes.get("status") or "")
        archived = attributes.get("archived") is True
        when = attributes.get("send_time") or attributes.get("scheduled_at")
        found.append(
            CatalogueCampaign(
                id=resource_id,
                name=str(attributes.get("name") or ""),
                channel=channel,
                status=campaign_status(status, archived),
                provider_status=status,
                send_time=_time(when),
            )
        )
    return found


def flows(document: Any) -> list[CatalogueFlow]:
    """The flow resources of a get_flows page."""
    return [
        CatalogueFlow(
            id=resource_id,
            name=str(attributes.get("name") or ""),
            status=flow_status(_text(attributes, "status"), attributes.get("archived") is True),
            provider_status=_text(attributes, "status"),
            trigger_type=str(attributes.get("trigger_type") or ""),
        )
        for resource_id, attributes in _resources(document)
    ]


def metric_ids(document: Any) -> dict[str, str]:
    """Name -> id of a get_metrics page's metrics (the first of a name)."""
    found: dict[str, str] = {}
    for resource_id, attributes in _resources(document):
        found.setdefault(str(attributes.get("name") or ""), resource_id)
    return found


def report_body(kind: str, conversion_metric_id: str) -> dict[str, Any]:
    """A campaign-values-report or flow-values-report over every campaign (flow) sent in the
    timeframe, by the default grouping."""
    return {
        "data": {
            "type": kind,
            "attributes": {
                "statistics": list(STATISTICS),
                "timeframe": {"key": TIMEFRAME},
                "conversion_metric_id": conversion_metric_id,
            },
        }
    }


def report_figures(document: Any, grouping: str, source: str) -> dict[str, Figures]:
    """Per campaign (flow) id (`grouping`: campaign_id, flow_id), the sum of its results'
    statistics. Raises ValueError for an answer that is no report."""
    data = document.get("data") if isinstance(document, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    results = attributes.get("results") if isinstance(attributes, dict) else None
    if not isinstance(results, list):
        raise ValueError("the answer has no data.attributes.results array")
    sums: dict[str, dict[str, float]] = {}
    for result in results:
        if not isinstance(result, dict):
            continue
        groupings, statistics = result.get("groupings"), result.get("statistics")
        owner = groupings.get(grouping) if isinstance(groupings, dict) else None
        if not isinstance(owner, str) or not isinstance(statistics, dict):
            continue
        total = sums.setdefault(owner, {})
        for name, value in statistics.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                total[name] = total.get(name, 0.0) + float(value)
    return {owner: Figures(source, TIMEFRAME, total) for owner, total in sums.items()}


def _resources(document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(id, attributes) of a JSON:API collection's resources. Raises ValueError when it is
    not one."""
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise ValueError("the answer has no data array")
    for resource in data:
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            attributes = resource.get("attributes")
            yield resource["id"], attributes if isinstance(attributes, dict) else {}


def _text(attributes: dict[str, Any], name: str) -> str:
    return str(attributes.get(name) or "")


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
