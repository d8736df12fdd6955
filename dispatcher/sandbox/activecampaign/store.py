"""The fake account's records: tables with string ids counted from 1, as ActiveCampaign
answers ids ("id": "10"), and the account that holds them all."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dispatcher.sandbox.activecampaign.errors import ApiError, no_result
from dispatcher.sandbox.common.campaign_sends import (
    CampaignMessageBook,
    CampaignSchedule,
    SeededEngagement,
)
from dispatcher.sandbox.common.flows import FlowBook
from dispatcher.sandbox.common.webhooks import Outgoing

Row = dict[str, Any]

SEEDED_AUTOMATIONS = ("Welcome series", "Abandoned cart reminder")


def timestamp(now: float) -> str:
    """ActiveCampaign's dates: ISO-8601 with an offset, to the second."""
    return _second(math.floor(now))


@functools.lru_cache(maxsize=256)
def _second(epoch_s: int) -> str:
    # One string per second, shared by every row stamped in it: the rows of a large import
    # would otherwise hold a copy each (~75 bytes, several a contact).
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


class _Index:
    """The ids of the rows holding each value of a column, in insertion order. A value only
    one row holds (an email, a contact's id) keeps that id as is: a dict for each would cost
    about 200 bytes for every one of a million contacts."""

    def __init__(self) -> None:
        self._ids: dict[Any, str | dict[str, None]] = {}

    def add(self, value: Any, row_id: str) -> None:
        held = self._ids.get(value)
        if held is None:
            self._ids[value] = row_id
        elif isinstance(held, str):
            self._ids[value] = {held: None, row_id: None}
        else:
            held[row_id] = None

    def remove(self, value: Any, row_id: str) -> None:
        held = self._ids.get(value)
        if held == row_id:
            del self._ids[value]
        elif isinstance(held, dict):
            held.pop(row_id, None)
            if not held:
                del self._ids[value]

    def ids(self, value: Any) -> Iterable[str]:
        held = self._ids.get(value)
        if held is None:
            return ()
        return (held,) if isinstance(held, str) else held


class Table:
    """Rows of one entity by string id, in creation order. Lookups on an `indexed` column
    (one no call changes after the row is made: a contact's email, a membership's contact)
    cost the rows sharing its value, not a scan: a million contacts stay fast to upsert."""

    def __init__(self, entity: str, indexed: tuple[str, ...] = (), first_id: int = 1) -> None:
        self.entity = entity  # as the "No Result found for <Entity>" messages name it
        self._rows: dict[str, Row] = {}
        self._next = first_id
        self._indexes: dict[str, _Index] = {name: _Index() for name in indexed}

    def insert(self, row: Row) -> Row:
        row["id"] = self.next_id()
        self._rows[row["id"]] = row
        for name, index in self._indexes.items():
            index.add(row.get(name), row["id"])
        return row

    def next_id(self) -> str:
        """A new id of this table's numbering (taken: no row inserted later gets it)."""
        row_id = str(self._next)
        self._next += 1
        return row_id

    def get(self, row_id: str) -> Row | None:
        return self._rows.get(row_id)

    def need(self, row_id: str, error: ApiError | None = None) -> Row:
        """The row, or `error` (404 "No Result found for <Entity> with id N" by default)."""
        row = self._rows.get(row_id)
        if row is None:
            raise error or no_result(self.entity, row_id)
        return row

    def delete(self, row_id: str) -> Row | None:
        row = self._rows.pop(row_id, None)
        if row is not None:
            for name, index in self._indexes.items():
                index.remove(row.get(name), row_id)
        return row

    def where(self, **equal: Any) -> list[Row]:
        rows, rest = self._candidates(equal)
        return [row for row in rows if _matches(row, rest)] if rest else rows

    def first(self, **equal: Any) -> Row | None:
        rows, rest = self._candidates(equal)
        return next((row for row in rows if _matches(row, rest)), None)

    def _candidates(self, equal: dict[str, Any]) -> tuple[list[Row], dict[str, Any]]:
        """The rows an index narrows the lookup to (every row when none does), and the
        conditions left to check on them (the indexed one holds for all)."""
        for name, index in self._indexes.items():
            if name in equal:
                rest = {other: value for other, value in equal.items() if other != name}
                return [self._rows[row_id] for row_id in index.ids(equal[name])], rest
        return list(self._rows.values()), equal

    def __iter__(self) -> Iterator[Row]:
        return iter(list(self._rows.values()))

    def __len__(self) -> int:
        return len(self._rows)


def _matches(row: Row, equal: dict[str, Any]) -> bool:
    return all(row.get(name) == value for name, value in equal.items())


@dataclass
class Import:
    """A bulk import batch: its contacts are applied once its delay has passed."""

    batch_id: str
    created: float
    due: float
    contacts: list[dict[str, Any]]  # emptied once applied: a batch's JSON is not kept
    success: list[str] = field(default_factory=list)  # contact ids
    failure: list[str] = field(default_factory=list)  # emails
    done: bool = False
    size: int = field(init=False)  # contacts in the batch

    def __post_init__(self) -> None:
        self.size = len(self.contacts)


@dataclass
class TrackedEvent:
    event: str
    eventdata: str
    email: str | None
    visit: str | None
    received_at: str


@dataclass
class CampaignPlan:
    """What PUT /campaigns/{id}/edit set on a campaign (campaign_drafts.py): its lists, its
    message, and when it is to go (None: at once when scheduled)."""

    list_ids: tuple[str, ...] = ()
    message_id: str | None = None
    scheduled_s: float | None = None


@dataclass
class CampaignReach:
    """Who engaged with a campaign so far, for its unique counters (campaign_reports.py):
    contact ids that opened, that clicked, and (contact id, url) pairs clicked."""

    opened: set[str] = field(default_factory=set)
    clicked: set[str] = field(default_factory=set)
    links: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Account:
    contacts: Table = field(default_factory=lambda: Table("contact", ("email_key",)))
    field_values: Table = field(default_factory=lambda: Table("FieldValue", ("contact",)))
    fields: Table = field(default_factory=lambda: Table("Field", ("title_key",)))
    field_rels: Table = field(default_factory=lambda: Table("FieldRel"))
    lists: Table = field(default_factory=lambda: Table("List"))
    # Indexed by list too: a campaign's send reads its lists' members without a scan.
    contact_lists: Table = field(default_factory=lambda: Table("ContactList", ("contact", "list")))
    tags: Table = field(default_factory=lambda: Table("Tag", ("tag_key",)))
    contact_tags: Table = field(default_factory=lambda: Table("ContactTag", ("contact",)))
    automations: Table = field(default_factory=lambda: Table("Automation"))
    campaigns: Table = field(default_factory=lambda: Table("Campaign"))
    contact_automations: Table = field(
        default_factory=lambda: Table("SubscriberSeries", ("contact",))
    )
    connections: Table = field(default_factory=lambda: Table("Connection"))
    ecom_customers: Table = field(default_factory=lambda: Table("EcomCustomer"))
    ecom_orders: Table = field(default_factory=lambda: Table("EcomOrder"))
    ecom_order_products: Table = field(
        default_factory=lambda: Table("EcomOrderProduct", ("orderid",))
    )
    imports: dict[str, Import] = field(default_factory=dict)
    tracking_enabled: bool = False
    tracking_event_names: list[str] = field(default_factory=list)
    tracked_events: list[TrackedEvent] = field(default_factory=list)
    # The account's exclusion list (email keys): a bulk import skips these addresses,
    # naming them neither a success nor a failure.
    excluded: set[str] = field(default_factory=set)
    # The automations' messages, their runs and what they sent (automation_flows.py).
    flows: FlowBook = field(default_factory=FlowBook)
    # Webhooks (webhooks.py); those deactivated by a 410; the events to send to them
    # that a call produced, handed to the sender when the call lets go of the account.
    webhooks: Table = field(default_factory=lambda: Table("Webhook"))
    inactive_webhooks: set[str] = field(default_factory=set)
    webhook_outbox: list[tuple[str, Outgoing]] = field(default_factory=list)
    # The campaign id of each automation email, by (automation id, its step): numbered
    # with the campaigns, as ActiveCampaign makes each automation email a campaign, but
    # not listed by GET /campaigns (the sandbox's choice: those are the planted ones).
    automation_campaigns: dict[tuple[str, int], str] = field(default_factory=dict)
    # Campaigns made through the API: their email messages (POST /messages), what each
    # campaign sends to whom and when (campaign_drafts.py), and their sending: the schedule,
    # every message recorded, the seeded engagement in force and who engaged
    # (campaign_sending.py, campaign_reports.py).
    email_messages: Table = field(default_factory=lambda: Table("Message"))
    campaign_plans: dict[str, CampaignPlan] = field(default_factory=dict)
    campaign_schedule: CampaignSchedule = field(default_factory=CampaignSchedule)
    campaign_book: CampaignMessageBook = field(default_factory=CampaignMessageBook)
    campaign_engagement: SeededEngagement = field(default_factory=SeededEngagement)
    campaign_reach: dict[str, CampaignReach] = field(default_factory=dict)

    def automation_campaign(self, automation_id: str, step: int) -> str:
        """The campaign id of the automation's email at `step` (made the first time)."""
        key = (automation_id, step)
        if key not in self.automation_campaigns:
            self.automation_campaigns[key] = self.campaigns.next_id()
        return self.automation_campaigns[key]

    def contact_by_email(self, email: str) -> Row | None:
        return self.contacts.first(email_key=email.strip().lower())

    def take_webhook_outbox(self) -> list[tuple[str, Outgoing]]:
        taken, self.webhook_outbox = self.webhook_outbox, []
        return taken

    def add_automation(self, name: str, now: float) -> Row:
        stamp = timestamp(now)
        row = {"name": name, "status": "1", "entered": "0", "exited": "0"}
        return self.automations.insert(row | {"cdate": stamp, "mdate": stamp})


def seeded_account(now: float, first_contact_id: int = 1) -> Account:
    """A new account with a couple of automations to enrol contacts in. Its contact ids
    count from `first_contact_id` (tests running two sandboxes against one service give
    them ranges of their own: the service keeps a provider id once)."""
    account = Account(contacts=Table("contact", ("email_key",), first_contact_id))
    for name in SEEDED_AUTOMATIONS:
        account.add_automation(name, now)
    return account


def public(row: Row) -> Row:
    """A row as answered: without the sandbox's own lookup keys (those ending in _key)."""
    return {k: v for k, v in row.items() if not k.endswith("_key")}
