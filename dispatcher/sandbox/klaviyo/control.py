"""The Klaviyo sandbox's /_sandbox/ control endpoints: the shared ones (common/control.py),
the simulated sending's (common/flow_control.py: clock, flows, messages;
common/campaign_sends.py: campaign messages and seeded engagement) and its own (events,
profiles, lists, throttles, engagement, webhook deliveries). See the package docstring for the
list."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dispatcher.sandbox.common.campaign_sends import SENT, MessageFilter, answer_campaign_views
from dispatcher.sandbox.common.clock import SandboxClock
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
    firsts = {k: v[0] for k, v in query.items()}
    if answer_flows(handler, _Sending(state), path, firsts, body):
        return
    if answer_campaign_views(handler, state.campaigns, path, firsts, body):
        return
    match handler.command, path.rstrip("/"):
        case "GET", "/_sandbox/events":
            handler.send_json(200, state.event_counts())
        case "GET", "/_sandbox/events/total":
            handler.send_json(200, {"unique_ids": state.events_held()})
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


class _Sending:
    """The flows as the shared flow endpoints see them, except that moving the clock sends
    whatever fell due, the campaigns' sends as well as the flows' messages."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state

    @property
    def clock(self) -> SandboxClock:
        return self._state.clock

    def send_due(self) -> None:
        self._state.send_due()

    def add_flows(self, documents: list[Any]) -> list[dict[str, Any]]:
        return self._state.flows.add_flows(documents)

    def flow_list(self) -> list[dict[str, Any]]:
        return self._state.flows.flow_list()

    def clear_flows(self) -> None:
        self._state.flows.clear_flows()

    def messages(
        self, email: str | None = None, flow: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        return self._state.flows.messages(email, flow, status)


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
    will deliver. ValueError says what is wrong with it. An engagement whose `campaign_id`
    names a campaign the sandbox sent is with that campaign's message (the one `message_id`
    names, else the person's); any other with a flow's message."""
    engagement = Engagement.from_json(document)
    campaign_message = _campaign_message(state, engagement)
    if campaign_message is not None:
        return state.webhooks.engaged_with(engagement, {"$message": str(campaign_message["id"])})
    return state.webhooks.engaged(engagement, state.flows.messages(status="sent"))


def _campaign_message(state: SandboxState, engagement: Engagement) -> dict[str, Any] | None:
    """The sent campaign message an engagement is about; None when it names no campaign the
    sandbox sent. ValueError: the campaign sent the person (or `message_id`) nothing."""
    if engagement.campaign_id is None or state.campaigns.get(engagement.campaign_id) is None:
        return None
    wanted = MessageFilter(engagement.campaign_id, engagement.email, SENT)
    messages, _ = state.campaigns.book.messages(wanted, limit=1_000_000)
    if engagement.message_id is not None:
        messages = [m for m in messages if str(m["id"]) == engagement.message_id]
    if not messages:
        raise ValueError(
            f"campaign {engagement.campaign_id} sent {engagement.email} no such message"
        )
    return messages[-1]


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
