"""The /_sandbox/ endpoints of the ActiveCampaign sandbox: the shared ones (common/control.py),
the simulated sending's (common/flow_control.py: clock, flows, messages; common/
campaign_sends.py: campaign messages and seeded engagement) and its own views,
reset, automations, the exclusion list, engagement and webhook deliveries."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dispatcher.sandbox.activecampaign import automation_flows, campaigns, views, webhook_events
from dispatcher.sandbox.activecampaign.due import settle_due
from dispatcher.sandbox.activecampaign.state import ActiveCampaignState
from dispatcher.sandbox.activecampaign.store import Account
from dispatcher.sandbox.common.campaign_sends import answer_campaign_views
from dispatcher.sandbox.common.control import PREFIX, answer_shared
from dispatcher.sandbox.common.engagement import Engagement
from dispatcher.sandbox.common.flow_control import answer_flows

if TYPE_CHECKING:
    from dispatcher.sandbox.common.http import SandboxHandler

__all__ = ["PREFIX", "answer"]


def answer(
    handler: SandboxHandler,
    state: ActiveCampaignState,
    path: str,
    query: dict[str, str],
    body: bytes,
) -> None:
    if answer_shared(handler, state, path, query.get("path"), body):
        return
    if answer_flows(handler, state.flows, path, query, body):
        return
    if answer_campaign_views(handler, state.campaign_sends, path, query, body):
        return
    match handler.command, path.rstrip("/"):
        case "POST", "/_sandbox/reset":
            state.reset()
            handler.send(204)
        case "POST", "/_sandbox/automations":
            _add_automation(handler, state, body)
        case "POST", "/_sandbox/campaigns":
            _plant_campaigns(handler, state, body)
        case "POST", "/_sandbox/exclusions":
            _exclude(handler, state, body)
        case "POST", "/_sandbox/engagement":
            _engage(handler, state, body)
        case "GET", "/_sandbox/webhook-deliveries":
            handler.send_json(200, state.webhooks.log.entries(query.get("webhook")))
        case "GET", view_path if view_path.removeprefix(PREFIX) in views.VIEWS:
            with state.account() as account:
                settle_due(account, state.clock())
                view = views.VIEWS[view_path.removeprefix(PREFIX)](account, query)
            handler.send_json(200, view)
        case _:
            handler.send_json(404, {"message": f"No such control endpoint: {path}"})


def engage(state: ActiveCampaignState, document: Any) -> dict[str, Any]:
    """POST /_sandbox/engagement (webhook_events.py): its effect, and the external ids it
    will deliver. ValueError says what is wrong; webhook_events.UnknownContact."""
    engagement = Engagement.from_json(document)
    with state.account() as account:
        settle_due(account, state.clock())  # judged and sent before the change
        return webhook_events.engaged(account, engagement, state.clock())


def _engage(handler: SandboxHandler, state: ActiveCampaignState, body: bytes) -> None:
    try:
        answer = engage(state, json.loads(body or b"null"))
    except webhook_events.UnknownContact as exc:
        handler.send_json(404, {"message": str(exc)})
    except (ValueError, TypeError) as exc:
        handler.send_json(400, {"message": f"Invalid engagement: {exc}"})
    else:
        handler.send_json(202, answer)


def _exclude(handler: SandboxHandler, state: ActiveCampaignState, body: bytes) -> None:
    """{"emails": [...]}: put addresses on the account's exclusion list."""
    emails = _member(body, "emails")
    if not isinstance(emails, list) or not all(isinstance(e, str) and e for e in emails):
        handler.send_json(400, {"message": 'Send {"emails": ["<address>", ...]}.'})
        return
    with state.account() as account:
        settle_due(account, state.clock())  # judged and sent before the change
        account.excluded.update(e.strip().lower() for e in emails)
    handler.send(204)


def _add_automation(handler: SandboxHandler, state: ActiveCampaignState, body: bytes) -> None:
    """{"name": "...", "messages"?, "trigger_event"?, "list"?}: a new automation contacts can
    be enrolled in, with its messages when given (as POST /_sandbox/flows gives them)."""
    name = _member(body, "name")
    if not isinstance(name, str) or not name.strip():
        handler.send_json(400, {"message": 'Send {"name": "<automation name>"}.'})
        return
    flow = {k: v for k, v in json.loads(body).items() if k != "name"}
    with state.account() as account:
        row = account.add_automation(name.strip(), state.clock())
        answer: dict[str, Any] = {"automation": dict(row)}
        try:
            if flow:
                answer["flow"] = _configure(account, flow | {"automation": row["id"]})
        except ValueError as exc:
            account.automations.delete(row["id"])  # all or nothing
            answer = {"message": f"Invalid flow: {exc}"}
    handler.send_json(400 if "message" in answer else 201, answer)


def _configure(account: Account, document: dict[str, Any]) -> dict[str, Any]:
    flow = automation_flows.flow_from_json(account, document)
    account.flows.add([flow])
    return flow.to_json()


def _member(body: bytes, name: str) -> Any:
    """`name` of the JSON object in `body`; None when the body is no such object."""
    try:
        document: Any = json.loads(body or b"null")
    except ValueError:
        return None
    return document.get(name) if isinstance(document, dict) else None


def _plant_campaigns(handler: SandboxHandler, state: ActiveCampaignState, body: bytes) -> None:
    """One campaign or a list, with its counters (campaigns.py): 201 {"campaigns"}."""
    try:
        document = json.loads(body or b"null")
        documents = document if isinstance(document, list) else [document]
        with state.account() as account:
            planted = campaigns.plant(account, documents, state.clock())
    except (ValueError, TypeError) as exc:
        handler.send_json(400, {"message": f"Invalid campaign: {exc}"})
    else:
        handler.send_json(201, {"campaigns": planted})
