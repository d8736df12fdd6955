"""Event tracking: the account switch and event names under /api/3, and trackcmp's
`POST /event` (form-encoded actid, key, event <= 32 characters, eventdata, visit), served on
the same server so a client's tracking URL can point at it.

From shared/PROVIDERS-API.md: success is 200 `{"success":1,"message":"Event spawned"}`; the
account must have event tracking switched on (`PUT /eventTracking`).

Beyond the page (the sandbox ASSUMES, a real account could differ): a refused event (wrong
actid or key, tracking off, no or too long an event name, a `visit` that is not a JSON object)
is answered 200 `{"success":0,"message":...}` (the failure shape trackcmp clients test for);
event tracking starts switched off, as in a new account; an event's name is registered the
first time it is tracked; creating a registered name again is 422 duplicate. An event may
start an automation configured to start on it (automation_flows.py)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, unquote

from dispatcher.sandbox.activecampaign import automation_flows
from dispatcher.sandbox.activecampaign.body import Call, required_text
from dispatcher.sandbox.activecampaign.due import settle_due
from dispatcher.sandbox.activecampaign.errors import ApiError, duplicate, invalid, message
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.state import ActiveCampaignState
from dispatcher.sandbox.activecampaign.store import Account, TrackedEvent
from dispatcher.sandbox.common.recording import iso

MAX_EVENT_NAME = 32


def status(account: Account, call: Call) -> Answer:
    return 200, {"eventTracking": {"enabled": account.tracking_enabled}}


def switch(account: Account, call: Call) -> Answer:
    enabled = call.resource("eventTracking").get("enabled")
    if enabled not in (True, False, 0, 1, "0", "1", "true", "false"):
        raise invalid("/eventTracking/enabled", "enabled must be true or false")
    account.tracking_enabled = enabled in (True, 1, "1", "true")
    return 200, {"eventTracking": {"enabled": account.tracking_enabled}}


def add_name(account: Account, call: Call) -> Answer:
    name = required_text(call.resource("eventTrackingEvent"), "name", "/eventTrackingEvent")
    if len(name) > MAX_EVENT_NAME:
        raise invalid("/eventTrackingEvent/name", f"at most {MAX_EVENT_NAME} characters")
    if name in account.tracking_event_names:
        raise duplicate("/eventTrackingEvent/name", "There is already an event with this name")
    account.tracking_event_names.append(name)
    return 201, {"eventTrackingEvent": {"name": name}}


def list_names(account: Account, call: Call) -> Answer:
    names = [{"name": name} for name in account.tracking_event_names]
    return 200, {"eventTrackingEvents": names, "meta": {"total": str(len(names))}}


def remove_name(account: Account, call: Call) -> Answer:
    name = unquote(call.params[0])
    if name not in account.tracking_event_names:
        raise message(404, f"No Result found for EventTrackingEvent with name {name}")
    account.tracking_event_names.remove(name)
    return 200, {}


def track(state: ActiveCampaignState, method: str, body: bytes) -> tuple[int, Any, bytes]:
    """POST /event: (status, answer, the form as JSON for the request log)."""
    if method != "POST":
        raise ApiError(405, {"message": "Method Not Allowed"}, headers={"Allow": "POST"})
    try:
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        form = {}
    recorded = json.dumps(form).encode()
    settings = state.settings
    with state.account() as account:
        now = state.clock()
        settle_due(account, now)  # before the event changes anything
        refused = _refusal(account, form, settings.tracking_actid, settings.tracking_key)
        if refused is not None:
            return 200, {"success": 0, "message": refused}, recorded
        event = TrackedEvent(
            form["event"],
            form.get("eventdata", ""),
            _visit_email(form.get("visit")),
            form.get("visit"),
            iso(now),
        )
        account.tracked_events.append(event)
        if form["event"] not in account.tracking_event_names:
            account.tracking_event_names.append(form["event"])
        automation_flows.tracked(account, event.event, event.email, event.eventdata, now)
    return 200, {"success": 1, "message": "Event spawned"}, recorded


def _refusal(
    account: Account, form: dict[str, str], actid: str | None, key: str | None
) -> str | None:
    if not form.get("actid") or (actid is not None and form["actid"] != actid):
        return "Invalid actid or key"
    if not form.get("key") or (key is not None and form["key"] != key):
        return "Invalid actid or key"
    if not account.tracking_enabled:
        return "Event tracking is not enabled for this account"
    event = form.get("event", "")
    if not event or len(event) > MAX_EVENT_NAME:
        return f"An event name of 1 to {MAX_EVENT_NAME} characters is required"
    if "visit" in form and _visit_email(form["visit"]) is None and not _is_object(form["visit"]):
        return "visit must be a JSON object"
    return None


def _is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _visit_email(visit: str | None) -> str | None:
    if not visit:
        return None
    try:
        document = json.loads(visit)
    except ValueError:
        return None
    email = document.get("email") if isinstance(document, dict) else None
    return email if isinstance(email, str) else None


ROUTES = [
    route("GET", "/api/3/eventTracking", status),
    route("PUT", "/api/3/eventTracking", switch),
    route("POST", "/api/3/eventTrackingEvents", add_name),
    route("GET", "/api/3/eventTrackingEvents", list_names),
    route("DELETE", "/api/3/eventTrackingEvents/{id}", remove_name),
]
