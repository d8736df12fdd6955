"""The /_sandbox/ control endpoints: no authentication, never faulted, rate limited or
recorded. See the package docstring for the list."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from dispatcher.sandbox.consent import Planted
from dispatcher.sandbox.jsonapi import error_document
from dispatcher.sandbox.profiles import FIELDS
from dispatcher.sandbox.reads import profile_resource
from dispatcher.sandbox.state import Fault, SandboxState, Throttle

if TYPE_CHECKING:
    from dispatcher.sandbox.server import _Handler

T = TypeVar("T")
_PLANTABLE = frozenset({*FIELDS, "location", "properties", "consent", "suppression", "lists"})


def control(handler: _Handler, path: str, query: dict[str, list[str]], body: bytes) -> None:
    state = handler.server.state
    match handler.command, path.rstrip("/"):
        case "GET", "/_sandbox/requests":
            filtered = query.get("path", [None])[0]
            handler.send(200, state.requests_json(filtered), content_type="application/json")
        case "DELETE", "/_sandbox/requests":
            state.reset()
            handler.send(204)
        case "GET", "/_sandbox/events":
            _json(handler, 200, state.event_counts())
        case "GET", "/_sandbox/profiles":
            state.settle()
            _json(handler, 200, state.consent.view(query.get("email", [None])[0]))
        case "POST", "/_sandbox/profiles":
            _plant_profile(handler, body)
        case "GET", "/_sandbox/rejections":
            _json(handler, 200, state.rejections())
        case "GET", "/_sandbox/throttled":
            _json(handler, 200, state.limiter.report())
        case "GET", "/_sandbox/faults":
            _json(handler, 200, state.faults())
        case "POST", "/_sandbox/faults":
            _add_faults(handler, body)
        case "DELETE", "/_sandbox/faults":
            state.clear_faults()
            handler.send(204)
        case "GET", "/_sandbox/throttles":
            _json(handler, 200, state.throttles())
        case "POST", "/_sandbox/throttles":
            _add_throttles(handler, body)
        case "GET", "/_sandbox/health":
            _json(handler, 200, {"status": "ok"})
        case _:
            handler.send(404, error_document(404, detail=f"No such control endpoint: {path}"))


def _json(handler: _Handler, status: int, value: Any) -> None:
    handler.send(status, json.dumps(value).encode(), content_type="application/json")


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
        _json(handler, 200, {"data": resource})


def _add_faults(handler: _Handler, body: bytes) -> None:
    """POST /_sandbox/faults takes one fault object or a list of them (queued in order)."""
    faults = _control_items(handler, body, Fault.from_json, "fault")
    if faults is not None:
        for fault in faults:
            handler.server.state.add_fault(fault)
        _json(handler, 201, handler.server.state.faults())


def _add_throttles(handler: _Handler, body: bytes) -> None:
    """POST /_sandbox/throttles takes one throttle object or a list of them."""
    throttles = _control_items(handler, body, Throttle.from_json, "throttle")
    if throttles is not None:
        for throttle in throttles:
            handler.server.state.add_throttle(throttle)
        _json(handler, 201, handler.server.state.throttles())


def _control_items(
    handler: _Handler, body: bytes, parse: Callable[[Any], T], what: str
) -> list[T] | None:
    """One JSON object or a list of them, each parsed; None (answered 400) if any is bad."""
    try:
        document = json.loads(body or b"null")
        items = document if isinstance(document, list) else [document]
        return [parse(item) for item in items]
    except (ValueError, TypeError) as exc:
        handler.send(400, error_document(400, detail=f"Invalid {what}: {exc}"))
        return None
