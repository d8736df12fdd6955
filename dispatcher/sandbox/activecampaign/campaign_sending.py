"""ActiveCampaign's campaign sends, simulated (the record, its views and the seeded draws are
common/campaign_sends.py's; the campaign's making and scheduling campaign_drafts.py's).

A campaign scheduled (status "1") falls due at its time by the sandbox's clock. It is sent
when something looks after that (every API call, every view, every move of the clock, and the
ticker once the account has a webhook), on the account as it was when it fell due: import
batches completed by then are applied first. Then:

- Its status becomes "2" (sending), and each contact with a status on one of its lists gets
  one message (one, whatever the number of its lists on which it is): sent when it is
  subscribed (status "1") to one of them and not on the account's exclusion list; else
  recorded skipped with the reason ("on the account's exclusion list", "unsubscribed on
  list 3", "bounced on list 3", "unconfirmed on list 3"). Messages are recorded in the order
  the contacts were put on the lists.
- Subject and HTML are rendered per personalization.py from the contact as the account holds
  it at that moment (recorded as render inputs, rendered when viewed). The record's headers
  are the provider's own List-Unsubscribe (an https link and a mailto naming the campaign and
  the message; the sandbox does not serve them) and List-Unsubscribe-Post one-click.
- `send_amt` and `total_amt` become the number sent (campaign_reports.py).
- With seeded engagement configured (POST /_sandbox/campaign-engagement), each message sent
  is delivered, opened and clicked as drawn, each engagement going through the path POST
  /_sandbox/engagement takes (webhook_events.py: its effect, a webhook naming the campaign,
  the campaign's counters), dated when the campaign fell due.
- SENDING_S later on the sandbox's clock it completes: status "5", `ldate` then. BEYOND
  (the sandbox's choice): a real send takes as long as it takes; one second lets a test see
  status "2" and is too short to matter to anyone polling for "5".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from dispatcher.sandbox.activecampaign import campaign_reports, imports, webhook_events
from dispatcher.sandbox.activecampaign.campaigns import COMPLETED, SCHEDULED, SENDING
from dispatcher.sandbox.activecampaign.memberships import SUBSCRIBED
from dispatcher.sandbox.activecampaign.personalization import (
    STANDARD_TAGS,
    Slots,
    compile_template,
)
from dispatcher.sandbox.activecampaign.store import Account, Row, timestamp
from dispatcher.sandbox.common.campaign_sends import (
    CampaignContent,
    CampaignMessageBook,
    Headers,
    RecordedSend,
    SeededEngagement,
    SendBuilder,
    Values,
    drawn_engagements,
)
from dispatcher.sandbox.common.engagement import Engagement

if TYPE_CHECKING:
    from dispatcher.sandbox.activecampaign.state import ActiveCampaignState

SENDING_S = 1.0
EMAIL = "email"
EXCLUDED = "on the account's exclusion list"
UNSUBSCRIBE_URL = "https://sandbox.activehosted.com/unsubscribe"
UNSUBSCRIBE_DOMAIN = "sandbox.activehosted.com"
# The standard tags (personalization.STANDARD_TAGS): the contact's own fields.
_CONTACT_KEYS = {
    "EMAIL": "email",
    "FIRSTNAME": "firstName",
    "LASTNAME": "lastName",
    "PHONE": "phone",
}
_LIST_STATUSES = {"0": "unconfirmed", "2": "unsubscribed", "3": "bounced"}

# A contact's render inputs, from the contact's row.
ValuesOf = Callable[[Row], Values]
# contact id -> (the list it is reached through, why it is not sent to: None when it is)
Audience = dict[str, tuple[str, str | None]]


class CampaignSending:
    """The account's campaign sends, as the shared views use them (CampaignSimulation)."""

    def __init__(self, state: ActiveCampaignState) -> None:
        self._state = state

    @property
    def book(self) -> CampaignMessageBook:
        with self._state.account() as account:
            return account.campaign_book

    @property
    def engagement(self) -> SeededEngagement:
        with self._state.account() as account:
            return account.campaign_engagement

    def send_due(self) -> None:
        with self._state.account() as account:
            send_due(account, self._state.clock())


def send_due(account: Account, now: float) -> None:
    """Send the campaigns due by `now` and complete those sent long enough (the account
    held), in the order they fell due."""
    if not account.campaign_schedule.due(now):  # the common case: a cheap peek
        return
    for campaign_id, due_s in account.campaign_schedule.take_due(now):
        campaign = account.campaigns.get(campaign_id)
        if campaign is None:
            continue
        if campaign["status"] == SCHEDULED:
            imports.settle(account, due_s)  # what was imported by then is on its lists
            _send(account, campaign, due_s)
            account.campaign_schedule.add(campaign_id, due_s + SENDING_S)
        elif campaign["status"] == SENDING:
            campaign["status"], campaign["ldate"] = COMPLETED, timestamp(due_s)


def _send(account: Account, campaign: Row, sent_s: float) -> None:
    plan = account.campaign_plans[campaign["id"]]
    message = account.email_messages.need(plan.message_id or "")
    campaign["status"] = SENDING
    content, names = _content(account, campaign["id"], message)
    values_of = _values_of(account, names)
    builder = SendBuilder(campaign["id"], campaign["name"], EMAIL, content, sent_s)
    reached: list[tuple[Row, str]] = []  # each message's contact and list, for engagement
    for contact_id, (list_id, reason) in _audience(account, plan.list_ids).items():
        contact = account.contacts.get(contact_id)
        if contact is None:  # erasing a contact erases its memberships: never, but safe
            continue
        why = EXCLUDED if contact["email_key"] in account.excluded else reason
        if why is None:
            builder.sent(contact["email"], contact["email"], values_of(contact))
        else:
            builder.skipped(contact["email"], contact["email"], values_of(contact), why)
        reached.append((contact, list_id))
    recorded = account.campaign_book.record(builder)
    campaign_reports.count_sent(campaign, recorded.sent_count)
    _engage(account, campaign, recorded, reached)


def _audience(account: Account, list_ids: tuple[str, ...]) -> Audience:
    """Each contact with a status on one of the lists, in the order met: the list that
    reaches it (one it is subscribed to, when there is one) and why not (None: subscribed)."""
    audience: Audience = {}
    for list_id in list_ids:
        for membership in account.contact_lists.where(list=list_id):  # the list's index
            contact_id, status = membership["contact"], membership["status"]
            current = audience.get(contact_id)
            if status == SUBSCRIBED and (current is None or current[1] is not None):
                audience[contact_id] = (list_id, None)
            elif current is None:
                audience[contact_id] = (list_id, _not_subscribed(list_id, status))
    return audience


@functools.cache
def _not_subscribed(list_id: str, status: str) -> str:
    """One string per list and status, however many contacts it is the reason for."""
    return f"{_LIST_STATUSES.get(status, f'status {status}')} on list {list_id}"


def _content(account: Account, campaign_id: str, message: Row) -> tuple[CampaignContent, list[str]]:
    """The message compiled against the tags the account knows now, and the names of the
    tags it uses (the order of each recipient's render inputs)."""
    perstags = {field["perstag"] for field in account.fields}
    slots = Slots(frozenset(STANDARD_TAGS) | perstags)
    subject = compile_template(message["subject"], slots, escape=False)
    body = compile_template(message["html"], slots, escape=True)
    headers = _list_unsubscribe(campaign_id)
    return CampaignContent(message["subject"], subject.render, body.render, headers), slots.names


def _values_of(account: Account, names: list[str]) -> ValuesOf:
    """How to read a contact's render inputs: a field of its own (EMAIL, FIRSTNAME, ...),
    or a custom field's value by perstag."""
    field_ids = {field["perstag"]: field["id"] for field in account.fields}
    custom = _custom_values(account, {field_ids[n] for n in names if n not in _CONTACT_KEYS})
    readers = [
        _own(_CONTACT_KEYS[name]) if name in _CONTACT_KEYS else _held(custom[field_ids[name]])
        for name in names
    ]
    return lambda contact: tuple([read(contact) for read in readers])


def _own(key: str) -> Callable[[Row], str | None]:
    return lambda contact: contact.get(key)


def _held(values: dict[str, str]) -> Callable[[Row], str | None]:
    return lambda contact: values.get(contact["id"])


def _custom_values(account: Account, field_ids: set[str]) -> dict[str, dict[str, str]]:
    """Field id -> contact id -> value, for the fields given: one pass over the account's
    values for the whole send, not a lookup per recipient."""
    found: dict[str, dict[str, str]] = {field_id: {} for field_id in field_ids}
    if found:
        for row in account.field_values:
            if row["field"] in found:
                found[row["field"]][row["contact"]] = row["value"]
    return found


def _list_unsubscribe(campaign_id: str) -> Headers:
    def headers(message_id: int, email: str | None) -> dict[str, str]:
        token = f"{campaign_id}/{message_id}"
        link = f"<{UNSUBSCRIBE_URL}/{token}>"
        mailto = f"<mailto:unsubscribe-{campaign_id}-{message_id}@{UNSUBSCRIBE_DOMAIN}>"
        return {
            "List-Unsubscribe": f"{link}, {mailto}",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }

    return headers


def _engage(
    account: Account, campaign: Row, recorded: RecordedSend, reached: list[tuple[Row, str]]
) -> None:
    """The seeded engagement of each message sent, when one is configured."""
    seed = account.campaign_engagement.current()
    if seed is None:
        return
    columns = recorded.columns
    rates = seed.rates(columns.content.subject_template)
    # The campaign as every webhook of this send names it: it stays "sending" meanwhile.
    described = campaign_reports.webhook_fields(account, campaign)
    for index in recorded.sent_indexes():
        contact, list_id = reached[index]

        def body(values: Values = columns.values[index]) -> str:
            return columns.content.body(values)

        for drawn in drawn_engagements(seed.seed, recorded.first_id + index, rates, body):
            engagement = Engagement(
                contact["email"], drawn.kind, url=drawn.url, campaign_id=campaign["id"]
            )
            webhook_events.campaign_engaged(
                account, engagement, contact, campaign, columns.sent_s, list_id, described
            )
