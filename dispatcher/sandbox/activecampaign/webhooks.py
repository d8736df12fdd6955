"""Webhooks (shared/PROVIDERS-API.md, ActiveCampaign "Webhooks"); what is sent to them is
webhook_events.py's.

    POST   /api/3/webhooks        {"webhook": {name, url, events[], sources[], listid?}} -> 201
                                  {"webhook": {cdate, listid ("0" for none), name, url,
                                  events, sources, links, id}}
    GET    /api/3/webhooks        {"webhooks": [...], "meta": {"total": "N"}} (limit, offset)
    GET    /api/3/webhooks/{id}   {"webhook": {...}}; 404 {"message"} when unknown
    DELETE /api/3/webhooks/{id}   200 {}; 404 {"message"} when unknown
    GET    /api/3/webhook/events  {"webhookEvents": [the 25 names], "meta": {"total": 25}}

Checks (422, ActiveCampaign's `{"errors": [...]}` with a pointer): name, url, events and
sources are required (field_missing); events are names of GET /webhook/events and sources
public, admin, api or system (field_invalid); url is http or https with a host, and an https
URL on a port other than 443 is refused (field_invalid): ActiveCampaign calls https URLs on 443
only. listid names a list of the account (related_missing) or is 0.

BEYOND (the page does not say; the sandbox's choice): refusing an https URL on another port
rather than accepting one it could never call, the unknown-list check, `links` as {}; an event
or source named twice counts once."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from dispatcher.sandbox.activecampaign.body import Call, page, ref, required_text
from dispatcher.sandbox.activecampaign.errors import invalid, missing, related_missing
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.store import Account, Row, public, timestamp

EVENTS = (
    *("bounce", "click", "contact_tag_added", "contact_tag_removed", "deal_add"),
    *("deal_note_add", "deal_pipeline_add", "deal_stage_add", "deal_task_add"),
    *("deal_task_complete", "deal_tasktype_add", "deal_update", "forward", "list_add", "open"),
    *("reply", "sent", "share", "sms_reply", "sms_sent", "sms_unsub", "subscribe"),
    *("subscriber_note", "unsubscribe", "update"),
)
SOURCES = ("public", "admin", "api", "system")
_POINTER = "/webhook"


def create(account: Account, call: Call) -> Answer:
    given = call.resource("webhook")
    name = required_text(given, "name", _POINTER)
    url = _url(required_text(given, "url", _POINTER).strip())
    events = _names(given, "events", EVENTS)
    sources = _names(given, "sources", SOURCES)
    given_list = given.get("listid")
    listid = "0" if given_list in (None, "") else ref(given_list)
    if listid is None:
        raise invalid(f"{_POINTER}/listid", "listid must be a list's id or 0")
    if listid != "0":
        account.lists.need(listid, related_missing(f"{_POINTER}/listid", "List"))
    row: Row = {"cdate": timestamp(call.now), "listid": listid, "name": name, "url": url}
    row |= {"events": events, "sources": sources, "links": {}}
    return 201, {"webhook": public(account.webhooks.insert(row))}


def _url(url: str) -> str:
    pointer = f"{_POINTER}/url"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise invalid(pointer, f"{url!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(pointer, f"{url!r} is not an http or https URL")
    if parts.scheme == "https" and port not in (None, 443):
        raise invalid(pointer, "https webhooks are called on port 443 only")
    return url


def _names(given: dict[str, Any], key: str, allowed: tuple[str, ...]) -> list[str]:
    pointer = f"{_POINTER}/{key}"
    value = given.get(key)
    if not value:
        raise missing(pointer)
    if not isinstance(value, list):
        raise invalid(pointer, f"{key} must be a list")
    for item in value:
        if item not in allowed:
            raise invalid(pointer, f"{item!r} is not one of {list(allowed)}")
    return list(dict.fromkeys(value))


def list_webhooks(account: Account, call: Call) -> Answer:
    selected, meta = page(list(account.webhooks), call.query)
    return 200, {"webhooks": [public(row) for row in selected], "meta": meta}


def read(account: Account, call: Call) -> Answer:
    return 200, {"webhook": public(account.webhooks.need(call.params[0]))}


def delete(account: Account, call: Call) -> Answer:
    row = account.webhooks.need(call.params[0])
    account.webhooks.delete(row["id"])
    account.inactive_webhooks.discard(row["id"])
    return 200, {}


def events(account: Account, call: Call) -> Answer:
    return 200, {"webhookEvents": list(EVENTS), "meta": {"total": len(EVENTS)}}


ROUTES = [
    route("POST", "/api/3/webhooks", create),
    route("GET", "/api/3/webhooks", list_webhooks),
    route("GET", "/api/3/webhooks/{id}", read),
    route("DELETE", "/api/3/webhooks/{id}", delete),
    route("GET", "/api/3/webhook/events", events),
]
