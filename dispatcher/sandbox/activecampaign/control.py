"""The /_sandbox/ endpoints of the ActiveCampaign sandbox (no authentication, never faulted,
rate-limited or recorded)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dispatcher.sandbox.activecampaign import imports, views
from dispatcher.sandbox.activecampaign.state import ActiveCampaignState
from dispatcher.sandbox.common.faults import Fault, parse_items

if TYPE_CHECKING:
    from dispatcher.sandbox.common.http import SandboxHandler

PREFIX = "/_sandbox/"


def answer(
    handler: SandboxHandler,
    state: ActiveCampaignState,
    path: str,
    query: dict[str, str],
    body: bytes,
) -> None:
    match handler.command, path.rstrip("/"):
        case "GET", "/_sandbox/requests":
            handler.send(200, state.requests_json(query.get("path")))
        case "DELETE", "/_sandbox/requests":
            state.clear_log()
            handler.send(204)
        case "GET", "/_sandbox/rejections":
            handler.send_json(200, state.rejections())
        case "GET", "/_sandbox/throttled":
            handler.send_json(200, state.throttled())
        case "GET", "/_sandbox/faults":
            handler.send_json(200, state.faults.list())
        case "POST", "/_sandbox/faults":
            _add_faults(handler, state, body)
        case "DELETE", "/_sandbox/faults":
            state.faults.clear()
            handler.send(204)
        case "POST", "/_sandbox/reset":
            state.reset()
            handler.send(204)
        case "POST", "/_sandbox/automations":
            _add_automation(handler, state, body)
        case "GET", "/_sandbox/health":
            handler.send_json(200, {"status": "ok"})
        case "GET", view_path if view_path.removeprefix(PREFIX) in views.VIEWS:
            with state.account() as account:
                imports.settle(account, state.clock())
                view = views.VIEWS[view_path.removeprefix(PREFIX)](account, query)
            handler.send_json(200, view)
        case _:
            handler.send_json(404, {"message": f"No such control endpoint: {path}"})


def _add_faults(handler: SandboxHandler, state: ActiveCampaignState, body: bytes) -> None:
    """One fault object or a list of them, queued in order."""
    try:
        faults = parse_items(body, Fault.from_json)
    except (ValueError, TypeError) as exc:
        handler.send_json(400, {"message": f"Invalid fault: {exc}"})
        return
    for fault in faults:
        state.faults.add(fault)
    handler.send_json(201, state.faults.list())


def _add_automation(handler: SandboxHandler, state: ActiveCampaignState, body: bytes) -> None:
    """{"name": "..."}: a new automation contacts can be enrolled in."""
    try:
        document: Any = json.loads(body or b"null")
    except ValueError:
        document = None
    name = document.get("name") if isinstance(document, dict) else None
    if not isinstance(name, str) or not name.strip():
        handler.send_json(400, {"message": 'Send {"name": "<automation name>"}.'})
        return
    with state.account() as account:
        row = account.add_automation(name.strip(), state.clock())
    handler.send_json(201, {"automation": dict(row)})
