"""ActiveCampaign's webhooks, sent by the sandbox (the webhooks themselves: webhooks.py).

What is reported, to every webhook subscribed to the event and its source (and, when it has
a `listid`, about that list; the sms_* events whatever the list, as ActiveCampaign ignores
listid for them) that has not been deactivated:

- an automation's message sent (automation_flows.py): `sent` for an email, `sms_sent` for an
  SMS, initiated_from "system";
- an engagement told through POST /_sandbox/engagement (common/engagement.py), of a contact
  the account holds (404 otherwise): delivered (`sent`: ActiveCampaign reports no delivery),
  opened (`open`), clicked (`click`, link[url]), bounced (`bounce`, bounce[type|code|
  description]), unsubscribed (`unsubscribe`, unsubscribe[reason]), spam (`unsubscribe`,
  reason "spam complaint": ActiveCampaign has no complaint event) and sms_unsubscribed
  (`sms_unsub`, sms[phone]). The person's own actions are initiated_from "public", sent and
  bounce "system". Its effect on the account comes first: an unsubscribe sets status 2 (with
  the reason) on every email list the contact is subscribed to; a spam complaint does too and
  puts the address on the exclusion list; a hard bounce sets status 3 (bounced) there and
  puts the address on the exclusion list; an SMS unsubscribe sets status 2 on the SMS lists.
  BEYOND (the sandbox's choice): which lists, and the exclusion list standing for "no longer
  sent to".

A delivery is one form-encoded POST per event (application/x-www-form-urlencoded): type,
date_time (ISO 8601 with offset), initiated_from, initiated_by, list, contact[id|email|
first_name|last_name|phone], what the message was, and the event's own fields above. The
message: for an engagement naming a campaign_id, campaign[id] (that campaign's); for an
automation's message (one sent, or the engagement's message), campaign[type] "automation",
campaign[id] (a campaign id of its own, numbered with the account's campaigns: one for each
email of the automation, as ActiveCampaign makes each a campaign; GET /campaigns does not list
them, the sandbox's choice), campaign[name] (the automation's), campaign[message][id] (the
message's id in GET /_sandbox/messages) and automation[id] (the automation's id: ASSUMED, as
ActiveCampaign's documented payload lists no automation field; the receiver reads the flow
from it). It is not signed and never retried; an answer of 410
deactivates the webhook (nothing more is sent to it, until it is deleted and made again), as
ActiveCampaign does. Its external id, as the receiver computes it (dispatcher/webhooks), is
the SHA-256 of the body: a body sent to several webhooks has one.

An engagement with a campaign of the account's (a campaign_id it holds: one made through the
API or planted; seeded engagement of a campaign's send, campaign_sending.py, comes this way
too) names the campaign in full instead (campaign_reports.py: campaign[id], [name], [type],
[status], [recipients], [message][id], [message][subject]; no automation), its `list` the
campaign's list that reached the contact, and is counted in the campaign's counters. Such an
engagement takes no message_id (that names an automation's message)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote_plus

from dispatcher.sandbox.activecampaign import campaign_reports
from dispatcher.sandbox.activecampaign.memberships import SUBSCRIBED, UNSUBSCRIBED
from dispatcher.sandbox.activecampaign.store import Account, Row, timestamp
from dispatcher.sandbox.common import engagement as kinds
from dispatcher.sandbox.common.engagement import Engagement, chosen_message
from dispatcher.sandbox.common.flows import Message
from dispatcher.sandbox.common.webhooks import Outgoing, Policy, Request, Target

POLICY = Policy()  # one event a request, one attempt
FORM = "application/x-www-form-urlencoded"
BOUNCED = "3"  # a list status
GONE = 410
TYPE_OF = {
    kinds.DELIVERED: "sent",
    kinds.OPENED: "open",
    kinds.CLICKED: "click",
    kinds.BOUNCED: "bounce",
    kinds.SPAM: "unsubscribe",
    kinds.UNSUBSCRIBED: "unsubscribe",
    kinds.SMS_UNSUBSCRIBED: "sms_unsub",
}
_SYSTEM = frozenset({"sent", "sms_sent", "bounce"})
_BOUNCES = {
    kinds.HARD: ("5.1.1", "Mailbox does not exist"),
    kinds.SOFT: ("4.2.2", "Mailbox full"),
}


class UnknownContact(LookupError):
    """An engagement of an address the account holds no contact for."""


def message_sent(account: Account, message: Message, contact: Row) -> None:
    """An automation's message went out (the account held)."""
    if not len(account.webhooks):  # the common case: nothing to build
        return
    flow = message.run.flow
    kind = "sent" if message.step.channel == "email" else "sms_sent"
    form = _common(kind, message.due_s, flow.gate or "0", contact)
    form |= _automation_message(account, flow.key, flow.name, message.step_index, message.id)
    emit(account, form)


def engaged(account: Account, engagement: Engagement, now: float) -> dict[str, Any]:
    """Apply an engagement to the account and report it; what POST /_sandbox/engagement
    answers: {"external_ids", "webhooks"}. UnknownContact; ValueError for a message_id
    naming no message sent (or given with a campaign of the account's), an SMS unsubscribe
    without a phone number."""
    contact = account.contact_by_email(engagement.email)
    if contact is None:
        raise UnknownContact(f"No contact with the email {engagement.email}")
    campaign = account.campaigns.get(engagement.campaign_id or "")
    if campaign is not None:
        if engagement.message_id is not None:
            raise ValueError("message_id names an automation's message, not a campaign's")
        return campaign_engaged(account, engagement, contact, campaign, now)
    message = chosen_message(engagement, account.flows.messages(status="sent"))
    phone = _phone(engagement, contact)
    flow = account.flows.get(str(message["flow"])) if message else None
    described = _campaign(account, engagement, message)
    gate = flow.gate if flow else None
    return _report(account, engagement, contact, now, gate, described, phone)


def campaign_engaged(
    account: Account,
    engagement: Engagement,
    contact: Row,
    campaign: Row,
    now: float,
    list_id: str | None = None,
    described: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An engagement with one of the account's campaigns (seeded, campaign_sending.py, or
    told): its effect, reported naming the campaign (campaign_reports.py), then counted in
    the campaign's counters. `list_id`: the campaign's list it reached the contact through
    (by default the first of its lists the contact is on); `described`: the campaign's
    webhook fields, when the caller made them once for many engagements."""
    phone = _phone(engagement, contact)
    gate = list_id or _campaign_list(account, campaign["id"], contact)
    described = described or campaign_reports.webhook_fields(account, campaign)
    reported = _report(account, engagement, contact, now, gate, described, phone)
    campaign_reports.count_engagement(account, campaign, contact, engagement)
    return reported


def _campaign_list(account: Account, campaign_id: str, contact: Row) -> str | None:
    plan = account.campaign_plans.get(campaign_id)
    if plan is None:
        return None
    on = {row["list"] for row in account.contact_lists.where(contact=contact["id"])}
    return next((list_id for list_id in plan.list_ids if list_id in on), None)


def _phone(engagement: Engagement, contact: Row) -> str:
    """The number an engagement names; ValueError for an SMS unsubscribe without one."""
    phone: str = engagement.phone or contact.get("phone") or ""
    if engagement.type == kinds.SMS_UNSUBSCRIBED and not phone:
        raise ValueError("an SMS unsubscribe needs a phone: the contact has none")
    return phone


def _report(
    account: Account,
    engagement: Engagement,
    contact: Row,
    now: float,
    gate: str | None,
    described: dict[str, str],
    phone: str,
) -> dict[str, Any]:
    """Apply the engagement, then queue its event (`described`: the message it was with)
    for the webhooks subscribed; {"external_ids", "webhooks"}. `gate`: the list it names
    (else the first whose status it changed, else "0")."""
    changed = _apply(account, engagement, contact, now)
    if not len(account.webhooks):  # nothing to build: a seeded send engages many
        return {"external_ids": [], "webhooks": []}
    kind = TYPE_OF[engagement.type]
    form = _common(kind, now, gate or (changed[0] if changed else "0"), contact)
    form |= described | _own_fields(engagement, kind, phone)
    return emit(account, form)


def _apply(account: Account, engagement: Engagement, contact: Row, now: float) -> list[str]:
    """The engagement's effect; the lists whose status it changed."""
    if engagement.type in (kinds.UNSUBSCRIBED, kinds.SPAM):
        status, channel = UNSUBSCRIBED, "email"
    elif engagement.hard_bounce:
        status, channel = BOUNCED, "email"
    elif engagement.type == kinds.SMS_UNSUBSCRIBED:
        status, channel = UNSUBSCRIBED, "sms"
    else:
        return []
    if engagement.type == kinds.SPAM or engagement.hard_bounce:
        account.excluded.add(contact["email_key"])
    changed = []
    for row in account.contact_lists.where(contact=contact["id"], status=SUBSCRIBED):
        listed = account.lists.get(row["list"])
        if listed is not None and listed.get("channel", "email") == channel:
            row["status"], row["udate"] = status, timestamp(now)
            if status == UNSUBSCRIBED:
                row["unsubreason"] = _reason(engagement)
            changed.append(str(row["list"]))
    return changed


def _common(kind: str, at_s: float, list_id: str, contact: Row) -> dict[str, str]:
    source = "system" if kind in _SYSTEM else "public"
    return {
        "type": kind,
        "date_time": timestamp(at_s),
        "initiated_from": source,
        "initiated_by": source,
        "list": str(list_id),
        "contact[id]": contact["id"],
        "contact[email]": contact["email"],
        "contact[first_name]": contact.get("firstName") or "",
        "contact[last_name]": contact.get("lastName") or "",
        "contact[phone]": contact.get("phone") or "",
    }


def _campaign(
    account: Account, engagement: Engagement, message: dict[str, Any] | None
) -> dict[str, str]:
    """The message's fields: the campaign the engagement names, else the automation's
    message it is with, else none."""
    if engagement.campaign_id:
        return {"campaign[id]": engagement.campaign_id}
    if message is None:
        return {}
    automation_id = str(message["flow"])
    return _automation_message(
        account, automation_id, message["flow_name"], message["step"], message["id"]
    )


def _automation_message(
    account: Account, automation_id: str, name: str, step: int, message_id: int
) -> dict[str, str]:
    """An automation's message, as its events name it: an email campaign of type
    "automation" of its own id, and the automation."""
    return {
        "campaign[type]": "automation",
        "campaign[id]": account.automation_campaign(automation_id, step),
        "campaign[name]": name,
        "campaign[message][id]": str(message_id),
        "automation[id]": automation_id,
    }


def _own_fields(engagement: Engagement, kind: str, phone: str) -> dict[str, str]:
    if kind == "click":
        return {"link[url]": engagement.url or ""}
    if kind == "bounce":
        bounce = engagement.bounce_type or kinds.HARD
        code, description = _BOUNCES[bounce]
        return {"bounce[type]": bounce, "bounce[code]": code, "bounce[description]": description}
    if kind == "unsubscribe":
        return {"unsubscribe[reason]": _reason(engagement)}
    if kind == "sms_unsub":
        return {"sms[phone]": phone}
    return {}


def _reason(engagement: Engagement) -> str:
    return engagement.reason or ("spam complaint" if engagement.type == kinds.SPAM else "")


def emit(account: Account, form: dict[str, str]) -> dict[str, Any]:
    """Queue the event for every webhook it is for (handed to the sender when the call lets
    go of the account); {"external_ids", "webhooks"}, both [] when it is for none."""
    webhooks = [row["id"] for row in account.webhooks if _subscribed(account, row, form)]
    if not webhooks:
        return {"external_ids": [], "webhooks": []}
    body = form_body(form)
    external_id = hashlib.sha256(body).hexdigest()
    account.webhook_outbox.extend((w, Outgoing(external_id, body)) for w in webhooks)
    return {"external_ids": [external_id], "webhooks": webhooks}


def form_body(form: dict[str, str]) -> bytes:
    """`urlencode(form)`, byte for byte, with each name=value pair encoded once: a campaign's
    seeded engagement repeats most pairs (the campaign's, the date, a contact's across its
    events) hundreds of thousands of times, and urlencode quotes a character at a time."""
    return "&".join([_pair(name, value) for name, value in form.items()]).encode()


@functools.lru_cache(maxsize=4096)
def _pair(name: str, value: str) -> str:
    return f"{_name(name)}={quote_plus(value)}"


@functools.lru_cache(maxsize=256)
def _name(name: str) -> str:
    return quote_plus(name)  # a few dozen names, quoted once each


def _subscribed(account: Account, webhook: Row, form: dict[str, str]) -> bool:
    kind = form["type"]
    on_list = webhook["listid"] in ("0", form["list"]) or kind.startswith("sms_")
    return (
        webhook["id"] not in account.inactive_webhooks
        and kind in webhook["events"]
        and form["initiated_from"] in webhook["sources"]
        and on_list
    )


def encode(target: Target, items: Sequence[Outgoing], sent_at: float) -> Request:
    """One event's form (the policy sends one a request)."""
    (item,) = items
    return Request(item.content, {"Content-Type": FORM})


def target(account: Account, webhook_id: str) -> Target | None:
    """Where the webhook's deliveries go now; None once deleted or deactivated."""
    row = account.webhooks.get(webhook_id)
    if row is None or webhook_id in account.inactive_webhooks:
        return None
    return Target(webhook_id, row["url"])


def answered(account: Account, webhook_id: str, status: int | None) -> None:
    """A 410 deactivates the webhook."""
    if status == GONE and account.webhooks.get(webhook_id) is not None:
        account.inactive_webhooks.add(webhook_id)
