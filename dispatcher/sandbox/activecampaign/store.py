"""The fake account's records: tables with string ids counted from 1, as ActiveCampaign
answers ids ("id": "10"), and the account that holds them all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dispatcher.sandbox.activecampaign.errors import ApiError, no_result

Row = dict[str, Any]

SEEDED_AUTOMATIONS = ("Welcome series", "Abandoned cart reminder")


def timestamp(now: float) -> str:
    """ActiveCampaign's dates: ISO-8601 with an offset."""
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")


def iso(now: float) -> str:
    """When the sandbox received a request, to the microsecond."""
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds")


class Table:
    """Rows of one entity by string id, in creation order."""

    def __init__(self, entity: str) -> None:
        self.entity = entity  # as the "No Result found for <Entity>" messages name it
        self._rows: dict[str, Row] = {}
        self._next = 1

    def insert(self, row: Row) -> Row:
        row["id"] = str(self._next)
        self._next += 1
        self._rows[row["id"]] = row
        return row

    def get(self, row_id: str) -> Row | None:
        return self._rows.get(row_id)

    def need(self, row_id: str, error: ApiError | None = None) -> Row:
        """The row, or `error` (404 "No Result found for <Entity> with id N" by default)."""
        row = self._rows.get(row_id)
        if row is None:
            raise error or no_result(self.entity, row_id)
        return row

    def delete(self, row_id: str) -> Row | None:
        return self._rows.pop(row_id, None)

    def where(self, **equal: Any) -> list[Row]:
        return [row for row in self if all(row.get(k) == v for k, v in equal.items())]

    def first(self, **equal: Any) -> Row | None:
        return next((row for row in self if all(row.get(k) == v for k, v in equal.items())), None)

    def __iter__(self) -> Iterator[Row]:
        return iter(list(self._rows.values()))

    def __len__(self) -> int:
        return len(self._rows)


@dataclass
class Import:
    """A bulk import batch: its contacts are applied once its delay has passed."""

    batch_id: str
    created: float
    due: float
    contacts: list[dict[str, Any]]
    success: list[str] = field(default_factory=list)  # contact ids
    failure: list[str] = field(default_factory=list)  # emails
    done: bool = False


@dataclass
class TrackedEvent:
    event: str
    eventdata: str
    email: str | None
    visit: str | None
    received_at: str


@dataclass
class Account:
    contacts: Table = field(default_factory=lambda: Table("contact"))
    field_values: Table = field(default_factory=lambda: Table("FieldValue"))
    fields: Table = field(default_factory=lambda: Table("Field"))
    field_rels: Table = field(default_factory=lambda: Table("FieldRel"))
    lists: Table = field(default_factory=lambda: Table("List"))
    contact_lists: Table = field(default_factory=lambda: Table("ContactList"))
    tags: Table = field(default_factory=lambda: Table("Tag"))
    contact_tags: Table = field(default_factory=lambda: Table("ContactTag"))
    automations: Table = field(default_factory=lambda: Table("Automation"))
    contact_automations: Table = field(default_factory=lambda: Table("SubscriberSeries"))
    connections: Table = field(default_factory=lambda: Table("Connection"))
    ecom_customers: Table = field(default_factory=lambda: Table("EcomCustomer"))
    ecom_orders: Table = field(default_factory=lambda: Table("EcomOrder"))
    ecom_order_products: Table = field(default_factory=lambda: Table("EcomOrderProduct"))
    imports: dict[str, Import] = field(default_factory=dict)
    tracking_enabled: bool = False
    tracking_event_names: list[str] = field(default_factory=list)
    tracked_events: list[TrackedEvent] = field(default_factory=list)

    def contact_by_email(self, email: str) -> Row | None:
        return self.contacts.first(email_key=email.strip().lower())

    def add_automation(self, name: str, now: float) -> Row:
        stamp = timestamp(now)
        row = {"name": name, "status": "1", "entered": "0", "exited": "0"}
        return self.automations.insert(row | {"cdate": stamp, "mdate": stamp})


def seeded_account(now: float) -> Account:
    """A new account with a couple of automations to enrol contacts in."""
    account = Account()
    for name in SEEDED_AUTOMATIONS:
        account.add_automation(name, now)
    return account


def public(row: Row) -> Row:
    """A row as answered: without the sandbox's own lookup keys (those ending in _key)."""
    return {k: v for k, v in row.items() if not k.endswith("_key")}
