"""ActiveCampaign's automations, simulated (the scheduling and recording are common/flows.py's).
An automation's messages, as POST /_sandbox/flows takes them:

    {"automation": "1", "messages": [{"delay_s": 0, "channel": "email", "subject": "Hi
     {{ contact.firstName }}", "body": "..."}], "trigger_event": "back_in_stock", "list": "2"}

`automation` is an automation's id (the flow's key: posting it again replaces the messages);
`trigger_event` and `list` are optional; `channel` is email (default) or sms.

- POST /api/3/contactAutomations enrols the contact and starts a run (every enrolment its own):
  each message is due `delay_s` after the enrolment. In templates, `contact` is the contact as
  the account holds it when the message falls due (id, email, firstName, lastName, phone, and
  `fields` by personalization tag: {{ contact.fields.PRODUCT_URL }}), `automation` its id and
  name, and `event` the tracked event that started it ({} for an enrolment through the API).
- DELETE /api/3/contactAutomations/{id} cancels the enrolment's pending messages; deleting the
  contact (which removes its enrolments) cancels them when they fall due.
- `trigger_event`: POST /event of that name for a contact the account holds (`visit`'s email)
  enrols it, as ActiveCampaign's "event tracked" start trigger does (a contactAutomation the API
  lists and can delete), unless it is in the automation already (an enrolment that has not
  completed): a contact is in an automation once at a time. `event` is {"name", "data"}, data
  being `eventdata` parsed as JSON when it is JSON, else as sent (the sandbox's choice).
- A message that falls due is skipped, with the reason, when the contact is on the account's
  exclusion list, is unsubscribed (status 2) from the automation's `list` (without one: has a
  status on some list and is subscribed to none; a contact on no list gets automation emails),
  or has no phone number for an SMS.
- When every message of a run was sent or skipped, its enrolment completes: status "2",
  `completed` 1 (the sandbox ASSUMES these values; the provider client reuses only an
  enrolment that has not completed).
- A message sent is reported to the webhooks (webhook_events.py).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dispatcher.sandbox.activecampaign import campaign_sending, webhook_events
from dispatcher.sandbox.activecampaign.body import ref
from dispatcher.sandbox.activecampaign.enrolments import add_enrolment, complete, in_automation
from dispatcher.sandbox.activecampaign.memberships import SUBSCRIBED, UNSUBSCRIBED
from dispatcher.sandbox.activecampaign.store import Account, Row, Table, public
from dispatcher.sandbox.common.clock import SandboxClock
from dispatcher.sandbox.common.flows import (
    CANCELLED,
    SENT,
    SKIPPED,
    Flow,
    Message,
    Verdict,
    steps_from_json,
)

if TYPE_CHECKING:
    from dispatcher.sandbox.activecampaign.state import ActiveCampaignState

MAX_EVENT_NAME = 32  # as POST /event takes it
_FIELDS = frozenset({"automation", "trigger_event", "list", "messages"})


class AutomationFlows:
    """The automations' messages of one ActiveCampaign sandbox (held in its account)."""

    def __init__(self, state: ActiveCampaignState) -> None:
        self._state = state

    @property
    def clock(self) -> SandboxClock:
        return self._state.clock

    def send_due(self) -> None:
        """Decide the messages due, and send the campaigns due: a move of the clock and the
        ticker come here for both."""
        with self._state.account() as account:
            now = self._state.clock()
            send_due(account, now)
            campaign_sending.send_due(account, now)

    def add_flows(self, documents: list[Any]) -> list[dict[str, Any]]:
        with self._state.account() as account:
            flows = [flow_from_json(account, document) for document in documents]
            account.flows.add(flows)
        return [flow.to_json() for flow in flows]

    def flow_list(self) -> list[dict[str, Any]]:
        with self._state.account() as account:
            return [flow.to_json() for flow in account.flows.flows()]

    def clear_flows(self) -> None:
        with self._state.account() as account:
            account.flows.clear()

    def messages(
        self, email: str | None = None, flow: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        with self._state.account() as account:
            send_due(account, self._state.clock())
            return account.flows.messages(email=email, flow=flow, status=status)


def flow_from_json(account: Account, document: Any) -> Flow:
    if not isinstance(document, dict):
        raise ValueError("a flow is a JSON object")
    unknown = set(document) - _FIELDS
    if unknown:
        raise ValueError(f"unknown flow fields: {sorted(unknown)}")
    automation = _named(account.automations, document.get("automation"), "automation")
    trigger = document.get("trigger_event")
    if trigger is not None and not _event_name(trigger):
        raise ValueError(f"trigger_event must be 1 to {MAX_EVENT_NAME} characters")
    given_list = document.get("list")
    list_id = None if given_list is None else _named(account.lists, given_list, "list")["id"]
    shown = {"automation": automation["id"], "name": automation["name"]}
    shown |= {"trigger_event": trigger, "list": list_id}
    steps = steps_from_json(document.get("messages"))
    name = automation["name"]
    return Flow(automation["id"], name, steps, shown, trigger=trigger, gate=list_id)


def _event_name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_EVENT_NAME


def _named(table: Table, given: Any, what: str) -> Row:
    row = table.get(ref(given) or "")
    if row is None:
        raise ValueError(f"{what} must name one of the account's, got {given!r}")
    return row


def send_due(account: Account, now: float) -> None:
    """Decide the messages due by `now` (the account held); complete finished enrolments."""
    for run in account.flows.send_due(now, lambda message: _judge(account, message)):
        row = account.contact_automations.get(run.key or "")
        if row is not None:
            complete(row, max(m.decided_s or now for m in run.messages))


def tracked(account: Account, name: str, email: str | None, eventdata: str, now: float) -> None:
    """An event tracked through POST /event: it enrols the contact in the automations that
    start on it."""
    if email is None or not account.flows.listens(name):
        return
    contact = account.contact_by_email(email)
    if contact is None:
        return
    event = {"name": name, "data": _data(eventdata)}
    for flow in account.flows.flows():
        automation = account.automations.get(flow.key)
        if flow.trigger != name or automation is None:
            continue
        if not in_automation(account, contact, flow.key):
            add_enrolment(account, contact, automation, now, event)


def _judge(account: Account, message: Message) -> Verdict:
    run = message.run
    enrolment = account.contact_automations.get(run.key or "")
    if enrolment is None:
        return Verdict(CANCELLED, "enrolment removed")
    contact = account.contacts.get(enrolment["contact"])
    if contact is None:
        return Verdict(CANCELLED, "contact deleted")
    automation = {"id": run.flow.key, "name": run.flow.name}
    context = {"contact": _contact_context(account, contact), "automation": automation}
    channel = message.step.channel
    to = contact["email"] if channel == "email" else contact.get("phone") or None
    reason = _unreachable(account, contact, run.flow.gate, channel)
    if reason is None:
        webhook_events.message_sent(account, message, contact)
    return Verdict(SENT if reason is None else SKIPPED, reason, to, context)


def _unreachable(account: Account, contact: Row, list_id: str | None, channel: str) -> str | None:
    """Why a message cannot go to the contact now; None when it can."""
    if channel == "sms" and not contact.get("phone"):
        return "the contact has no phone number"
    if contact["email_key"] in account.excluded:
        return "on the account's exclusion list"
    statuses = {m["list"]: m["status"] for m in account.contact_lists.where(contact=contact["id"])}
    if list_id is not None:
        unsubscribed = statuses.get(list_id) == UNSUBSCRIBED
        return f"unsubscribed from list {list_id}" if unsubscribed else None
    if statuses and SUBSCRIBED not in statuses.values():
        return "unsubscribed from every list"
    return None


def _contact_context(account: Account, contact: Row) -> dict[str, Any]:
    fields = {}
    for value in account.field_values.where(contact=contact["id"]):
        field = account.fields.get(value["field"])
        if field is not None:
            fields[field["perstag"]] = value["value"]
    return public(contact) | {"fields": fields}


def _data(eventdata: str) -> Any:
    try:
        return json.loads(eventdata)
    except ValueError:
        return eventdata
