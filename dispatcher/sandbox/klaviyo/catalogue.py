"""The account's campaigns (planted by POST /_sandbox/campaigns, with their figures), its
metrics (every metric an accepted event named) and its flows' ids, as Klaviyo's resources;
and the values reports over them (shared/PROVIDERS-API.md, "Campaigns", "Flows",
"Reporting", "Metrics"). The HTTP side is catalogue_routes.py.

A planted campaign, as POST /_sandbox/campaigns takes it (or a list of them):

    {"name": "Summer sale", "channel": "email" | "sms", "status": "Sent" (one of Klaviyo's 18,
     default "Sent"), "archived": false, "send_time": ISO 8601 (default: now for a campaign
     sent or being sent, else none), "statistics": {"recipients": 100, "delivered": 98,
     "opens_unique": 40, ...}}

`statistics` are its counts (the reports' count names); a report computes its rates from them
(open_rate = opens_unique / delivered, click_rate = clicks_unique / delivered, ... as
fractions). A flow's figures come from its simulated messages: each message sent is one
recipient and one delivery of its flow message (the step); nothing else is counted.

Ids: a campaign's is 26 characters (ULID-like), its message's too; a flow's and a metric's
six, made from its name, so a test can tell them in advance (`flow_id`, `metric_id`).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dispatcher.sandbox.common.recording import iso

CHANNELS = ("email", "sms")
CAMPAIGN_STATUSES = (
    "Draft",
    "Scheduled",
    "Sending",
    "Sent",
    "Cancelled",
    "Cancelled: Smart Sending",
    "Cancelled: No Recipients",
    "Cancelled: Billing Limit",
    "Cancelled: Account Disabled",
    "Cancelled: Internal Error",
    "Cancelled: Misconfigured",
    "Preparing to send",
    "Preparing to schedule",
    "Adding Recipients",
    "Queued without Recipients",
    "Sending Segments",
    "Variations Sent",
    "Unknown",
)
_SENT_STATUSES = frozenset({"Sending", "Sent", "Variations Sent", "Sending Segments"})
COUNTS = (
    "recipients",
    "delivered",
    "opens",
    "opens_unique",
    "clicks",
    "clicks_unique",
    "bounced",
    "failed",
    "bounced_or_failed",
    "spam_complaints",
    "unsubscribes",
    "unsubscribe_uniques",
    "conversions",
    "conversion_uniques",
    "conversion_value",
    "message_segment_count_sum",
)
# Each rate (and money figure) the reports compute: numerator, denominator.
RATES = {
    "delivery_rate": ("delivered", "recipients"),
    "open_rate": ("opens_unique", "delivered"),
    "click_rate": ("clicks_unique", "delivered"),
    "click_to_open_rate": ("clicks_unique", "opens_unique"),
    "bounce_rate": ("bounced", "recipients"),
    "failed_rate": ("failed", "recipients"),
    "bounced_or_failed_rate": ("bounced_or_failed", "recipients"),
    "spam_complaint_rate": ("spam_complaints", "delivered"),
    "unsubscribe_rate": ("unsubscribe_uniques", "delivered"),
    "conversion_rate": ("conversion_uniques", "delivered"),
    "average_order_value": ("conversion_value", "conversions"),
    "revenue_per_recipient": ("conversion_value", "recipients"),
}
# The SMS money figures the sandbox does not simulate: always 0.
UNSIMULATED = ("text_message_credit_usage_amount", "text_message_spend", "text_message_roi")
STATISTICS = frozenset({*COUNTS, *RATES, *UNSIMULATED})
EVENTS_PATH, BULK_EVENTS_PATH = "/api/events", "/api/event-bulk-create-jobs"
_PLANTABLE = frozenset({"name", "channel", "status", "archived", "send_time", "statistics"})
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def short_id(kind: str, name: str) -> str:
    """Six characters made from a name, as Klaviyo's flow and metric ids look."""
    digest = hashlib.sha256(f"{kind}\0{name}".encode()).digest()
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:6])


def flow_id(name: str) -> str:
    """The id GET /api/flows gives the sandbox flow named `name`."""
    return short_id("flow", name)


def metric_id(name: str) -> str:
    """The id GET /api/metrics gives the metric named `name`."""
    return short_id("metric", name)


@dataclass(frozen=True)
class Campaign:
    id: str
    message_id: str
    name: str
    channel: str
    status: str
    archived: bool
    created_s: float
    send_s: float | None
    statistics: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """As GET /_sandbox/campaigns shows it."""
        send_time = None if self.send_s is None else iso(self.send_s)
        return {
            "id": self.id,
            "message_id": self.message_id,
            "name": self.name,
            "channel": self.channel,
            "status": self.status,
            "archived": self.archived,
            "send_time": send_time,
            "statistics": self.statistics,
        }


@dataclass
class CatalogueBook:
    """The campaigns and metrics of the account, and when each flow was first listed."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _campaigns: dict[str, Campaign] = field(default_factory=dict)
    _metrics: dict[str, float] = field(default_factory=dict)  # name -> first seen
    _flows_seen: dict[str, float] = field(default_factory=dict)
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def plant_all(self, documents: list[Any], now: float) -> list[Campaign]:
        """Campaigns from their JSON, all or none (ValueError says what is wrong)."""
        campaigns = [
            _campaign_from_json(document, now, self._ulid(now), self._ulid(now))
            for document in documents
        ]
        with self._lock:
            self._campaigns.update((campaign.id, campaign) for campaign in campaigns)
        return campaigns

    def campaigns(self) -> list[Campaign]:
        with self._lock:
            return list(self._campaigns.values())

    def new_id(self, now: float) -> str:
        """A campaign's (or campaign message's) id: 26 characters, the time, then a counter
        (unique in this sandbox, whichever way the campaign was made)."""
        return self._ulid(now)

    def _ulid(self, now: float) -> str:
        """26 characters: the time, then a counter (unique in this sandbox)."""
        with self._lock:
            number = (int(now * 1000) << 80) | next(self._counter)
        return "".join(_ULID_ALPHABET[(number >> (5 * i)) & 31] for i in range(25, -1, -1))

    def events_accepted(self, path: str, document: Any, now: float) -> None:
        """The metrics an accepted event POST names exist from then on (Klaviyo makes a
        metric at its first event)."""
        names = set(_metric_names(path, document))
        if names:
            with self._lock:
                for name in names:
                    self._metrics.setdefault(name, now)

    def metrics(self) -> list[tuple[str, float]]:
        with self._lock:
            return list(self._metrics.items())

    def has_metric(self, identifier: str) -> bool:
        with self._lock:
            return any(metric_id(name) == identifier for name in self._metrics)

    def flow_seen(self, key: str, now: float) -> float:
        """When the flow `key` was first listed (its `created` time)."""
        with self._lock:
            return self._flows_seen.setdefault(key, now)


def _metric_names(path: str, document: Any) -> Iterator[str]:
    """The metric names of a validated POST /api/events or /api/event-bulk-create-jobs."""
    attributes = document["data"]["attributes"]
    if path == EVENTS_PATH:
        yield attributes["metric"]["data"]["attributes"]["name"]
    elif path == BULK_EVENTS_PATH:
        for entry in attributes["events-bulk-create"]["data"]:
            for event in entry["attributes"]["events"]["data"]:
                yield event["attributes"]["metric"]["data"]["attributes"]["name"]


def _campaign_from_json(document: Any, now: float, campaign_id: str, message_id: str) -> Campaign:
    if not isinstance(document, dict):
        raise ValueError("a campaign is a JSON object")
    unknown = set(document) - _PLANTABLE
    if unknown:
        raise ValueError(f"unknown campaign fields: {sorted(unknown)}")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    channel = document.get("channel", "email")
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {list(CHANNELS)}")
    status = document.get("status", "Sent")
    if status not in CAMPAIGN_STATUSES:
        raise ValueError(f"status must be one of Klaviyo's: {list(CAMPAIGN_STATUSES)}")
    archived = document.get("archived", False)
    if not isinstance(archived, bool):
        raise ValueError("archived must be true or false")
    return Campaign(
        campaign_id,
        message_id,
        name,
        channel,
        status,
        archived,
        now,
        _send_time(document.get("send_time"), status, now),
        _counts(document.get("statistics")),
    )


def _send_time(value: Any, status: str, now: float) -> float | None:
    if value is None:
        return now if status in _SENT_STATUSES else None
    if not isinstance(value, str):
        raise ValueError("send_time must be an ISO 8601 time")
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _counts(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("statistics is an object of counts")
    for name, count in value.items():
        if name not in COUNTS:
            raise ValueError(f"statistics are counts, one of {list(COUNTS)}; not {name!r}")
        if isinstance(count, bool) or not isinstance(count, int | float) or count < 0:
            raise ValueError(f"statistics.{name} must be a number at least 0")
    return {name: float(count) for name, count in value.items()}


def campaign_resource(campaign: Campaign, base: str) -> dict[str, Any]:
    """As GET /api/campaigns answers it."""
    self_url = f"{base}/api/campaigns/{campaign.id}/"
    send_time = None if campaign.send_s is None else iso(campaign.send_s)
    attributes = {
        "name": campaign.name,
        "status": campaign.status,
        "archived": campaign.archived,
        "audiences": {"included": [], "excluded": []},
        "send_options": {"use_smart_sending": True},
        "tracking_options": {
            "add_tracking_params": False,
            "is_tracking_clicks": True,
            "is_tracking_opens": True,
        },
        "send_strategy": {"method": "immediate"},
        "created_at": iso(campaign.created_s),
        "scheduled_at": send_time if campaign.status == "Scheduled" else None,
        "updated_at": iso(campaign.created_s),
        "send_time": send_time,
    }
    messages = {"data": [{"type": "campaign-message", "id": campaign.message_id}]}
    return {
        "type": "campaign",
        "id": campaign.id,
        "attributes": attributes,
        "relationships": {"campaign-messages": messages, "tags": {"data": []}},
        "links": {"self": self_url},
    }


def flow_resource(key: str, name: str, created_s: float, base: str) -> dict[str, Any]:
    """A simulated flow as GET /api/flows answers it: live, on a metric."""
    identifier = flow_id(key)
    return {
        "type": "flow",
        "id": identifier,
        "attributes": {
            "name": name,
            "status": "live",
            "archived": False,
            "created": iso(created_s),
            "updated": iso(created_s),
            "trigger_type": "Metric",
        },
        "links": {"self": f"{base}/api/flows/{identifier}/"},
    }


def metric_resource(name: str, created_s: float, base: str) -> dict[str, Any]:
    identifier = metric_id(name)
    return {
        "type": "metric",
        "id": identifier,
        "attributes": {
            "name": name,
            "created": iso(created_s),
            "updated": iso(created_s),
            "integration": {
                "object": "integration",
                "id": "0rG4eQ",
                "key": "api",
                "name": "API",
                "category": "API",
            },
        },
        "links": {"self": f"{base}/api/metrics/{identifier}/"},
    }


@dataclass(frozen=True)
class Row:
    """One report result before its statistics are chosen: its groupings and counts."""

    groupings: dict[str, Any]
    counts: dict[str, float]
    when_s: float  # the send it counts, for the timeframe


def statistics_of(counts: dict[str, float], wanted: list[str]) -> dict[str, float | int]:
    """The statistics asked for, from the counts (rates as fractions, 0 with no base)."""
    full = {name: counts.get(name, 0.0) for name in COUNTS}
    full["bounced_or_failed"] = full["bounced_or_failed"] or full["bounced"] + full["failed"]
    for name, (numerator, denominator) in RATES.items():
        base = full[denominator]
        full[name] = round(full[numerator] / base, 4) if base else 0.0
    return {name: _number(full.get(name, 0.0)) for name in wanted}


def _number(value: float) -> float | int:
    """A whole number as an integer, as Klaviyo answers counts."""
    return int(value) if value.is_integer() else value


def timeframe_window(timeframe: dict[str, Any], now: float) -> tuple[float, float]:
    """[start, end] of a validated timeframe, in the account's timezone (UTC here)."""
    if "key" in timeframe:
        return TIMEFRAMES[timeframe["key"]](datetime.fromtimestamp(now, UTC))
    start = datetime.fromisoformat(timeframe["start"]).replace(tzinfo=UTC)
    end = datetime.fromisoformat(timeframe["end"]).replace(tzinfo=UTC)
    return start.timestamp(), end.timestamp()


def _days(n: int) -> Callable[[datetime], tuple[float, float]]:
    return lambda now: ((now - timedelta(days=n)).timestamp(), now.timestamp())


def _midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _week(now: datetime) -> datetime:
    return _midnight(now) - timedelta(days=now.weekday())


def _month(now: datetime) -> datetime:
    return _midnight(now).replace(day=1)


def _year(now: datetime) -> datetime:
    return _month(now).replace(month=1)


def _span(start: datetime, end: datetime) -> tuple[float, float]:
    return start.timestamp(), end.timestamp()


# The sandbox's reading of Klaviyo's timeframe keys: calendar ones by UTC calendar, "last_N"
# ones back from now (a month taken as 30 days).
TIMEFRAMES: dict[str, Callable[[datetime], tuple[float, float]]] = {
    "today": lambda now: _span(_midnight(now), now),
    "yesterday": lambda now: _span(_midnight(now) - timedelta(days=1), _midnight(now)),
    "this_week": lambda now: _span(_week(now), now),
    "last_week": lambda now: _span(_week(now) - timedelta(days=7), _week(now)),
    "this_month": lambda now: _span(_month(now), now),
    "last_month": lambda now: _span(_month(_month(now) - timedelta(days=1)), _month(now)),
    "this_year": lambda now: _span(_year(now), now),
    "last_year": lambda now: _span(_year(now).replace(year=_year(now).year - 1), _year(now)),
    "last_7_days": _days(7),
    "last_30_days": _days(30),
    "last_90_days": _days(90),
    "last_3_months": _days(90),
    "last_12_months": _days(365),
    "last_365_days": _days(365),
}
