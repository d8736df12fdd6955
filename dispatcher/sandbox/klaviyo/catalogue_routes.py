"""The catalogue endpoints (catalogue.py keeps what they answer from):

    GET  /api/campaigns?filter=equals(messages.channel,"email")   the planted campaigns and those
         made by POST /api/campaigns (campaign_routes.py); the channel clause is required
         (400 without it, as Klaviyo's `filter` is); and(...) may add equals(archived,false),
         equals/any(status,...), contains(name,"..."), any(id,[...]); page[size] 1-100 (100)
    GET  /api/flows          the simulated flows (POST /_sandbox/flows), all live, trigger
                             "Metric"; filter any(id), equals/contains(name), equals(status),
                             equals(archived), equals(trigger_type); page[size] 1-50 (50)
    GET  /api/metrics        every metric an accepted event named; 200 a page; page[cursor] only
                             (page[size] is refused); filter equals(integration.name|category)
    POST /api/campaign-values-reports   statistics*, timeframe*, conversion_metric_id*,
    POST /api/flow-values-reports       group_by, filter -> 200 with data.attributes.results

A report's checks (400 with source.pointer): data.type; statistics a non-empty list of the 31
names; timeframe {key} of the 14 keys or {start, end} at most a year apart; a conversion metric
the account has; group_by of the allowed names including the two mandatory ones; a filter of
equals / contains-any clauses (combined with and) on the id, message id and send_channel
groupings (the only ones the sandbox filters on). Strings in filters may be single- or
double-quoted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from dispatcher.sandbox.klaviyo.campaigns import campaign_resource as sent_campaign_resource
from dispatcher.sandbox.klaviyo.catalogue import (
    STATISTICS,
    TIMEFRAMES,
    Row,
    campaign_resource,
    flow_id,
    flow_resource,
    metric_resource,
    short_id,
    statistics_of,
    timeframe_window,
)
from dispatcher.sandbox.klaviyo.reads import (
    Query,
    Reader,
    ReadError,
    one,
    page_links,
    page_offset,
    page_size,
)
from dispatcher.sandbox.klaviyo.state import SandboxState
from dispatcher.sandbox.klaviyo.validation import Invalid

CAMPAIGNS = "/api/campaigns"
FLOWS = "/api/flows"
METRICS = "/api/metrics"
CAMPAIGN_REPORTS = "/api/campaign-values-reports"
FLOW_REPORTS = "/api/flow-values-reports"
METRICS_PAGE = 200
MESSAGE_CHANNELS = ("email", "sms", "mobile_push")
MAX_WINDOW = timedelta(days=366)
_FILTER_ITEM = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
_CLAUSE = re.compile(r"(?P<op>[a-z-]+)\((?P<field>[a-z_.]+),(?P<value>.*)\)", re.DOTALL)
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_ITEM = re.compile(rf"\s*({_FILTER_ITEM})\s*(?:,|$)", re.DOTALL)
Clause = tuple[str, str, Any]  # operator, field, value (a string, a bool or a list)
Writer = Callable[[SandboxState, dict[str, str], Any, str, str], tuple[int, bytes]]


def parse_clauses(text: str) -> list[Clause]:
    """`op(field,value)` or `and(op(...),op(...),...)`; ValueError when it is neither."""
    inner = text[4:-1] if text.startswith("and(") and text.endswith(")") else text
    clauses = []
    for part in _top_level(inner):
        found = _CLAUSE.fullmatch(part.strip())
        if found is None:
            raise ValueError(f"Invalid filter provided: {text!r}.")
        clauses.append((found["op"], found["field"], _value(found["value"].strip())))
    return clauses


def _top_level(text: str) -> list[str]:
    """`text` split at the commas outside parentheses, brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote and text[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if text.startswith("[") and text.endswith("]"):
        items, position, inner = [], 0, text[1:-1]
        while position < len(inner):
            found = _ITEM.match(inner, position)
            if found is None:
                raise ValueError("a list of quoted strings is expected")
            items.append(found[1][1:-1])
            position = found.end()
        return items
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return _ESCAPED.sub(r"\1", text[1:-1])  # a backslash escapes a quote or itself
    raise ValueError(f"{text!r} is not a quoted string, a list of them or a boolean")


def _filter(query: Query, allowed: dict[str, frozenset[str]], resource: str) -> list[Clause]:
    text = one(query, "filter")
    if text is None:
        return []
    try:
        clauses = parse_clauses(text)
    except ValueError as exc:
        raise ReadError(400, str(exc), "filter") from None
    for op, field, _ in clauses:
        if field not in allowed:
            raise ReadError(
                400, f"'{field}' is not a valid field for the resource '{resource}'.", "filter"
            )
        if op not in allowed[field]:
            raise ReadError(
                400, f"'{op}' is not a valid operator for the field '{field}'.", "filter"
            )
    return clauses


def _keeps(clauses: list[Clause], attributes: dict[str, Any]) -> bool:
    """Whether a resource's attributes (and id) pass every clause."""
    for op, field, value in clauses:
        have = attributes.get(field)
        if op == "equals" and have != value:
            return False
        if op == "any" and have not in value:
            return False
        if op == "contains" and not (isinstance(have, str) and str(value) in have):
            return False
    return True


_EQ, _ANY, _CONTAINS = frozenset({"equals"}), frozenset({"any"}), frozenset({"contains"})
_CAMPAIGN_FILTERS = {
    "messages.channel": _EQ,
    "archived": _EQ,
    "status": _EQ | _ANY,
    "name": _CONTAINS,
    "id": _ANY,
}
_FLOW_FILTERS = {
    "id": _ANY,
    "name": _EQ | _CONTAINS,
    "status": _EQ,
    "archived": _EQ,
    "trigger_type": _EQ,
}
_METRIC_FILTERS = {"integration.name": _EQ, "integration.category": _EQ}


def _campaigns(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    clauses = _filter(query, _CAMPAIGN_FILTERS, "campaign")
    channels = [v for op, field, v in clauses if field == "messages.channel"]
    if len(channels) != 1 or channels[0] not in MESSAGE_CHANNELS:
        detail = (
            "A filter on the channel is required: "
            "equals(messages.channel,'email'|'sms'|'mobile_push')."
        )
        raise ReadError(400, detail, "filter")
    size, offset = page_size(query, default=100, most=100), page_offset(query)
    listed = [(c.channel, campaign_resource(c, base)) for c in state.catalogue.campaigns()]
    listed += [(c.channel, sent_campaign_resource(c, base)) for c in state.campaigns.all()]
    found = []
    for channel, resource in listed:
        seen = resource["attributes"] | {"id": resource["id"], "messages.channel": channel}
        if _keeps(clauses, seen):
            found.append(resource)
    links = page_links(f"{base}{CAMPAIGNS}/", query, size, offset, len(found))
    return {"data": found[offset : offset + size], "links": links}


def _flows(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    clauses = _filter(query, _FLOW_FILTERS, "flow")
    size, offset = page_size(query, default=50, most=50), page_offset(query)
    now = state.clock()
    found = []
    for flow in state.flows.book.flows():
        resource = flow_resource(
            flow.key, flow.name, state.catalogue.flow_seen(flow.key, now), base
        )
        if _keeps(clauses, resource["attributes"] | {"id": resource["id"]}):
            found.append(resource)
    links = page_links(f"{base}{FLOWS}/", query, size, offset, len(found))
    return {"data": found[offset : offset + size], "links": links}


def _metrics(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    if "page[size]" in query:
        raise ReadError(400, "'page[size]' is not a valid parameter for metrics.", "page[size]")
    clauses = _filter(query, _METRIC_FILTERS, "metric")
    offset = page_offset(query)
    found = [
        metric_resource(name, created, base)
        for name, created in state.catalogue.metrics()
        if _keeps(clauses, {"integration.name": "API", "integration.category": "API"})
    ]
    links = page_links(f"{base}{METRICS}/", query, METRICS_PAGE, offset, len(found))
    return {"data": found[offset : offset + METRICS_PAGE], "links": links}


# --- reports ---------------------------------------------------------------------------------


class _Report:
    """What differs between the two values reports."""

    def __init__(self, kind: str, owner: str, groups: tuple[str, ...], plural: str) -> None:
        self.kind, self.owner, self.plural = kind, owner, plural
        self.message = f"{owner.removesuffix('_id')}_message_id"
        self.groups = frozenset(groups)
        self.mandatory = (owner, self.message)
        self.filters = {owner, self.message, "send_channel"}


_CAMPAIGN_REPORT = _Report(
    "campaign-values-report",
    "campaign_id",
    (
        "campaign_id",
        "campaign_message_id",
        "campaign_message_name",
        "group",
        "group_name",
        "send_channel",
        "tag_id",
        "tag_name",
        "text_message_format",
        "variation",
        "variation_name",
    ),
    "campaigns",
)
_FLOW_REPORT = _Report(
    "flow-values-report",
    "flow_id",
    (
        "flow_id",
        "flow_message_id",
        "flow_message_name",
        "flow_name",
        "send_channel",
        "tag_id",
        "tag_name",
        "text_message_format",
        "variation",
        "variation_name",
    ),
    "flows",
)


def _reporter(report: _Report, rows: Callable[[SandboxState], list[Row]]) -> Writer:
    def write(
        state: SandboxState, params: dict[str, str], document: Any, at: str, base: str
    ) -> tuple[int, bytes]:
        attributes = _report_attributes(document, report.kind)
        statistics = _statistics(attributes.get("statistics"))
        start, end = _timeframe(attributes.get("timeframe"), state.clock())
        _conversion_metric(state, attributes.get("conversion_metric_id"))
        group_by = _group_by(attributes.get("group_by"), report)
        clauses = _report_filter(attributes.get("filter"), report)
        totals: dict[tuple[Any, ...], dict[str, float]] = {}
        for row in rows(state):
            if start <= row.when_s <= end and _keeps(clauses, row.groupings):
                key = tuple(row.groupings.get(name) for name in group_by)
                total = totals.setdefault(key, {})
                for name, count in row.counts.items():
                    total[name] = total.get(name, 0.0) + count
        results = [
            {
                "groupings": dict(zip(group_by, key, strict=True)),
                "statistics": statistics_of(total, statistics),
            }
            for key, total in totals.items()
        ]
        owners = sorted({str(r["groupings"].get(report.owner)) for r in results} - {"None"})
        related = [{"type": report.plural.removesuffix("s"), "id": o} for o in owners]
        data = {
            "type": report.kind,
            "attributes": {"results": results},
            "relationships": {report.plural: {"data": related}},
        }
        path = CAMPAIGN_REPORTS if report is _CAMPAIGN_REPORT else FLOW_REPORTS
        return 200, json.dumps({"data": data, "links": {"self": f"{base}{path}/"}}).encode()

    return write


def _report_attributes(document: Any, kind: str) -> dict[str, Any]:
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise Invalid("/data", "must be an object")
    if data.get("type") != kind:
        raise Invalid("/data/type", f'must be "{kind}"')
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise Invalid("/data/attributes", "must be an object")
    return attributes


def _statistics(value: Any) -> list[str]:
    pointer = "/data/attributes/statistics"
    if not isinstance(value, list) or not value:
        raise Invalid(pointer, "must be a non-empty array")
    for index, name in enumerate(value):
        if name not in STATISTICS:
            raise Invalid(f"{pointer}/{index}", f"{name!r} is not a valid statistic")
    return list(dict.fromkeys(value))


def _timeframe(value: Any, now: float) -> tuple[float, float]:
    pointer = "/data/attributes/timeframe"
    if not isinstance(value, dict):
        raise Invalid(pointer, "must be an object: {key} or {start, end}")
    if "key" in value:
        if value["key"] not in TIMEFRAMES:
            raise Invalid(f"{pointer}/key", f"must be one of {sorted(TIMEFRAMES)}")
        return timeframe_window(value, now)
    try:
        start = datetime.fromisoformat(str(value["start"]))
        end = datetime.fromisoformat(str(value["end"]))
    except (KeyError, ValueError):
        raise Invalid(pointer, "start and end must be datetimes") from None
    start, end = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)  # the account's zone
    if not start < end <= start + MAX_WINDOW:
        raise Invalid(pointer, "end must follow start, by at most one year")
    return start.timestamp(), end.timestamp()


def _conversion_metric(state: SandboxState, value: Any) -> None:
    pointer = "/data/attributes/conversion_metric_id"
    if not isinstance(value, str) or not value:
        raise Invalid(pointer, "is required")
    if not state.catalogue.has_metric(value):
        raise Invalid(pointer, f"A metric with id {value} does not exist.")


def _group_by(value: Any, report: _Report) -> list[str]:
    pointer = "/data/attributes/group_by"
    if value is None:
        return [report.owner, report.message, "send_channel"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(pointer, "must be an array of strings")
    unknown = [v for v in value if v not in report.groups]
    if unknown:
        raise Invalid(pointer, f"{unknown[0]!r} is not a valid grouping")
    if not all(name in value for name in report.mandatory):
        raise Invalid(pointer, f"must include {' and '.join(report.mandatory)}")
    return list(dict.fromkeys(value))


def _report_filter(value: Any, report: _Report) -> list[Clause]:
    pointer = "/data/attributes/filter"
    if value is None:
        return []
    if not isinstance(value, str):
        raise Invalid(pointer, "must be a string")
    try:
        clauses = parse_clauses(value)
    except ValueError as exc:
        raise Invalid(pointer, str(exc)) from None
    for op, field, _ in clauses:
        if field not in report.filters:
            raise Invalid(pointer, f"the sandbox filters on {sorted(report.filters)} only")
        if op not in ("equals", "contains-any"):
            raise Invalid(pointer, f"'{op}' is not a valid operator for '{field}'")
    return [("equals" if op == "equals" else "any", f, v) for op, f, v in clauses]


def _campaign_rows(state: SandboxState) -> list[Row]:
    """A row per campaign sent (one message each): a planted one's counts, a simulated
    one's recipients and seeded engagements (campaigns.py)."""
    simulated = [
        Row(
            {
                "campaign_id": c.id,
                "campaign_message_id": c.message_id,
                "send_channel": c.channel,
                "campaign_message_name": c.definition.get("label") or c.name,
            },
            c.counts,
            c.send_s,
        )
        for c in state.campaigns.all()
        if c.status == "Sent" and c.send_s is not None
    ]
    return simulated + [
        Row(
            {
                "campaign_id": c.id,
                "campaign_message_id": c.message_id,
                "send_channel": c.channel,
                "campaign_message_name": c.name,
            },
            c.statistics,
            c.send_s,
        )
        for c in state.catalogue.campaigns()
        if c.send_s is not None and c.status not in ("Draft", "Scheduled")
    ]


def _flow_rows(state: SandboxState) -> list[Row]:
    """A row per flow message sent: one recipient, one delivery."""
    rows = []
    for message in state.flows.messages(status="sent"):
        identifier = flow_id(message["flow"])
        groupings = {
            "flow_id": identifier,
            "flow_message_id": short_id("flow-message", f"{message['flow']}\0{message['step']}"),
            "flow_name": message["flow_name"],
            "flow_message_name": message["subject"],
            "send_channel": message["channel"],
        }
        sent = datetime.fromisoformat(message["decided_at"]).timestamp()
        rows.append(Row(groupings, {"recipients": 1.0, "delivered": 1.0}, sent))
    return rows


READERS: dict[str, Reader] = {
    f"GET {CAMPAIGNS}": _campaigns,
    f"GET {FLOWS}": _flows,
    f"GET {METRICS}": _metrics,
}
WRITERS: dict[str, Writer] = {
    f"POST {CAMPAIGN_REPORTS}": _reporter(_CAMPAIGN_REPORT, _campaign_rows),
    f"POST {FLOW_REPORTS}": _reporter(_FLOW_REPORT, _flow_rows),
}


def plant_campaigns(state: SandboxState, documents: list[Any], base: str) -> list[dict[str, Any]]:
    """POST /_sandbox/campaigns: the campaigns as GET /api/campaigns shows them, with their
    message id and statistics (all or none: ValueError names what is wrong)."""
    planted = state.catalogue.plant_all(documents, state.clock())
    return [
        campaign_resource(c, base) | {"statistics": c.statistics, "message_id": c.message_id}
        for c in planted
    ]
