"""The Klaviyo sandbox's /_sandbox/ control endpoints: the shared ones (common/control.py),
the simulated sending's (common/flow_control.py: clock, flows, messages) and its own (events,
profiles, lists, throttles, engagement, webhook deliveries). See the package docstring for the
list."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dispatcher.sandbox.common.control import answer_shared, parsed_or_refused
from dispatcher.sandbox.common.engagement import Engagement
from dispatcher.sandbox.common.flow_control import answer_flows
from dispatcher.sandbox.klaviyo import catalogue_routes, list_routes
from dispatcher.sandbox.klaviyo.consent import Planted
from dispatcher.sandbox.klaviyo.jsonapi import error_document
from dispatcher.sandbox.klaviyo.profiles import FIELDS
from dispatcher.sandbox.klaviyo.reads import profile_resource
from dispatcher.sandbox.klaviyo.state import SandboxState, Throttle

if TYPE_CHECKING:
    from dispatcher.sandbox.klaviyo.server import _Handler

_PLANTABLE = frozenset({*FIELDS, "location", "properties", "consent", "suppression", "lists"})


def control(handler: _Handler, path: str, query: dict[str, list[str]], body: bytes) -> None:
    state = handler.server.state
    if answer_shared(handler, state, path, _first(query, "path"), body):
        return
    if answer_flows(handler, state.flows, path, {k: v[0] for k, v in query.items()}, body):
        return
    match handler.command, path.rstrip("/"):
        case "GET", "/_sandbox/events":
            handler.send_json(200, state.event_counts())
        case "GET", "/_sandbox/profiles":
            state.settle()
            handler.send_json(200, state.consent.view(_first(query, "email")))
        case "POST", "/_sandbox/profiles":
            _plant_profile(handler, body)
        case "GET", "/_sandbox/lists":
            state.settle()
            handler.send_json(200, list_routes.view(state))
        case "GET", "/_sandbox/push-tokens":
            handler.send_json(200, state.push_tokens.view())
        case "GET", "/_sandbox/campaigns":
            handler.send_json(200, [c.to_json() for c in state.catalogue.campaigns()])
        case "POST", "/_sandbox/campaigns":
            _plant_campaigns(handler, body)
        case "POST", "/_sandbox/engagement":
            _engage(handler, body)
        case "GET", "/_sandbox/webhook-deliveries":
            handler.send_json(200, state.webhooks.deliveries.entries(_first(query, "webhook")))
        case "GET", "/_sandbox/throttles":
            handler.send_json(200, state.throttles())
        case "POST", "/_sandbox/throttles":
            throttles = parsed_or_refused(handler, body, Throttle.from_json, "throttle")
            if throttles is not None:
                for throttle in throttles:
                    state.add_throttle(throttle)
                handler.send_json(201, state.throttles())
        case _:
            handler.send(404, error_document(404, detail=f"No such control endpoint: {path}"))


def _first(query: dict[str, list[str]], name: str) -> str | None:
    return query.get(name, [None])[0]


def plant_profile(state: SandboxState, document: Any, base_url: str) -> dict[str, Any]:
    """Set a profile's fields, properties, consent, suppressions and lists directly (creating
    it when unknown); the profile as GET /api/profiles shows it, with subscriptions."""
    if not isinstance(document, dict):
        raise ValueError("a profile is a JSON object")
    unknown = set(document) - _PLANTABLE
    if unknown:
        raise ValueError(f"unknown profile fields: {sorted(unknown)}")
    identity = {k: document[k] for k in ("email", "phone_number") if document.get(k)}
    if not identity:
        raise ValueError("an email or a phone_number names the profile")
    state.settle()
    at = state.now_iso()
    planted = Planted(
        consent=dict(document.get("consent") or {}),
        suppressions=_suppressions(document.get("suppression"), at),
        lists=None if document.get("lists") is None else [str(i) for i in document["lists"]],
    )
    attributes = {k: v for k, v in document.items() if k in (*FIELDS, "location", "properties")}
    profile = state.profiles.plant(attributes, at)
    state.consent.plant(identity, planted)
    return profile_resource(state, profile, {"subscriptions"}, base_url)


def _suppressions(value: Any, at: str) -> dict[str, str] | None:
    """[{"reason", "timestamp"?}] or ["REASON"] -> {reason: timestamp}."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("suppression is a list")
    reasons = {}
    for item in value:
        if isinstance(item, str):
            reasons[item] = at
        elif isinstance(item, dict) and isinstance(item.get("reason"), str):
            reasons[item["reason"]] = str(item.get("timestamp") or at)
        else:
            raise ValueError("a suppression is a reason or {reason, timestamp}")
    return reasons


def _plant_profile(handler: _Handler, body: bytes) -> None:
    try:
        document = json.loads(body or b"null")
        resource = plant_profile(handler.server.state, document, handler.base_url)
    except (ValueError, TypeError) as exc:
        handler.send(400, error_document(400, detail=f"Invalid profile: {exc}"))
    else:
        handler.send_json(200, {"data": resource})


def engage(state: SandboxState, document: Any) -> dict[str, Any]:
    """POST /_sandbox/engagement (webhook_events.py): its effect, and the external ids it
    will deliver. ValueError says what is wrong with it."""
    engagement = Engagement.from_json(document)
    return state.webhooks.engaged(engagement, state.flows.messages(status="sent"))


def _engage(handler: _Handler, body: bytes) -> None:
    try:
        answer = engage(handler.server.state, json.loads(body or b"null"))
    except (ValueError, TypeError) as exc:
        handler.send(400, error_document(400, detail=f"Invalid engagement: {exc}"))
    else:
        handler.send_json(202, answer)


def _plant_campaigns(handler: _Handler, body: bytes) -> None:
    """POST /_sandbox/campaigns (catalogue.py): one campaign or a list, all or none."""
    try:
        document = json.loads(body or b"null")
        documents = document if isinstance(document, list) else [document]
        planted = catalogue_routes.plant_campaigns(
            handler.server.state, documents, handler.base_url
        )
    except (ValueError, TypeError) as exc:
        handler.send(400, error_document(400, detail=f"Invalid campaign: {exc}"))
    else:
        handler.send_json(201, {"data": planted})
