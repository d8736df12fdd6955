"""The account's campaigns (shared/PROVIDERS-API.md, "Campaigns and messages"): planted by a
test with their figures (POST /_sandbox/campaigns) or made through the API
(campaign_drafts.py, sent by campaign_sending.py), listed as ActiveCampaign lists them.

    GET /api/3/campaigns[?limit=&offset=&filters[seriesid]=&filters[name]=
                         &orders[sdate]=ASC|DESC]
        -> {"campaigns": [...], "meta": {"total": "N", ...}}; every counter a string

`filters[name]` (ASSUMED: no source documents it) keeps the campaigns whose name is exactly
the one given, case and all: the dispatcher finds its campaign again by name after a lost
answer, and a campaign's name is its key there.

A planted campaign, as POST /_sandbox/campaigns takes it (or a list of them):

    {"name": "Summer sale", "status": 5 (0-7; default 5, completed), "type": "single",
     "sdate": ISO 8601 (default: now unless a draft), "seriesid": automation id (default 0),
     "counters": {"send_amt": 100, "uniqueopens": 40, ...}}

Counters not given are "0". The status values are API v1's (0 draft, 1 scheduled, 2 sending,
3 paused, 4 stopped, 5 completed, 6 disabled, 7 pending approval): the sandbox ASSUMES v3
keeps them (no source explains them; PROVIDERS-API.md).
"""

from __future__ import annotations

from typing import Any

from dispatcher.sandbox.activecampaign.body import Call, page
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.store import Account, Row, public, timestamp

COUNTERS = (
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
STATUSES = tuple(str(n) for n in range(8))
DRAFT, SCHEDULED, SENDING, COMPLETED = "0", "1", "2", "5"
_PLANTABLE = frozenset({"name", "status", "type", "sdate", "seriesid", "counters"})


def list_campaigns(account: Account, call: Call) -> Answer:
    rows = list(account.campaigns)
    series = call.query.get("filters[seriesid]")
    if series is not None:
        rows = [row for row in rows if row["seriesid"] == series]
    name = call.query.get("filters[name]")
    if name is not None:
        rows = [row for row in rows if row["name"] == name]
    order = (call.query.get("orders[sdate]") or "").upper()
    if order in ("ASC", "DESC"):
        rows.sort(key=lambda row: row["sdate"] or "", reverse=order == "DESC")
    selected, meta = page(rows, call.query)
    return 200, {"campaigns": [public(row) for row in selected], "meta": meta}


def plant(account: Account, documents: list[Any], now: float) -> list[Row]:
    """The campaigns as the API lists them (all or none: ValueError says what is wrong)."""
    rows = [campaign_row(document, now) for document in documents]
    return [public(account.campaigns.insert(row)) for row in rows]


def campaign_row(document: Any, now: float) -> Row:
    """A campaign as GET /campaigns lists it, from a planted campaign's fields."""
    if not isinstance(document, dict):
        raise ValueError("a campaign is a JSON object")
    unknown = set(document) - _PLANTABLE
    if unknown:
        raise ValueError(f"unknown campaign fields: {sorted(unknown)}")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    status = str(document.get("status", 5))
    if status not in STATUSES:
        raise ValueError(f"status must be one of {list(STATUSES)}")
    stamp = timestamp(now)
    sdate = document.get("sdate", None if status == DRAFT else stamp)
    if sdate is not None and not isinstance(sdate, str):
        raise ValueError("sdate must be an ISO 8601 time")
    series = str(document.get("seriesid", 0))
    row: Row = {"type": str(document.get("type", "single")), "userid": "1", "segmentid": "0"}
    row |= {"seriesid": series, "automation": series, "name": name, "status": status}
    row |= {"cdate": stamp, "mdate": stamp, "sdate": sdate, "ldate": sdate}
    row |= {"basemessageid": "0", "scheduleddate": None}  # set by PUT /campaigns/{id}/edit
    return row | _counters(document.get("counters"))


def _counters(value: Any) -> dict[str, str]:
    """Every counter as a string, as ActiveCampaign sends them."""
    given = value if value is not None else {}
    if not isinstance(given, dict):
        raise ValueError("counters is an object")
    for name, count in given.items():
        if name not in COUNTERS:
            raise ValueError(f"counters are {list(COUNTERS)}; not {name!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"counters.{name} must be a whole number at least 0")
    return {name: str(given.get(name, 0)) for name in COUNTERS}


ROUTES = [route("GET", "/api/3/campaigns", list_campaigns)]
