"""What the provider holds, one face for both providers' sandboxes, so that the system tests
that are not about one provider run against each: events received (by our event id),
profile writes, consent per person (in the terms of tests.dispatcher.helpers.expected_consent),
erased people, faults to inject and where, and the dispatcher replica that delivers there.

Placed orders become ActiveCampaign e-commerce orders keyed by their order id, not tracked
events: `order_event` makes orders whose order id is their event id, so both providers count
them by event id. The Klaviyo consent rules live once, in dispatcher/sandbox/klaviyo/consent.py."""

from __future__ import annotations

import json
import re
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from marketing.v1 import event_pb2

from dispatcher.sandbox import Sandbox
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.builders import line, money
from tests.consent_model import ConsentState
from tests.dispatcher.helpers import expected_consent
from tests.dispatcher.helpers import provider_consent as klaviyo_consent
from tests.dispatcher.providers.under_test import (
    activecampaign_consent,
    field_titles,
    new_list,
    tracked_event_counts,
)
from tests.processes import DispatcherProcess

ProviderConsent = dict[str, Any]
# For a test (or a module, as its pytestmark) that runs against the Klaviyo sandbox only.
KLAVIYO_ONLY = pytest.mark.parametrize("provider_under_test", ["klaviyo"], indirect=True)
Record = dict[str, Any]


@dataclass(frozen=True)
class Recorded:
    """One event as the provider recorded it, in our terms."""

    metric: str
    value: Decimal | None
    currency: str | None
    properties: dict[str, Any]


def order_event(email: str, lines: int = 1) -> event_pb2.Event:
    """A placed order whose order id is its event id (unique)."""
    order_id = f"order-{uuid.uuid4()}"
    order = event_pb2.Order(order_id=order_id, lines=[line()] * lines, total=money(10 * lines))
    placed = event_pb2.PlacedOrder(order=order)
    return event_pb2.Event(event_id=order_id, email=email, placed_order=placed)


def mentions(record: Record, *texts: str) -> bool:
    body = json.dumps(record["body"])
    return all(text in body for text in texts)


class SystemProvider(ABC):
    """A provider's sandbox as the system tests see it (see the subclasses)."""

    name: str
    base_url: str
    profile_path: str  # where a profile write goes
    event_path: str  # a prefix of where tracked events go
    settings: dict[str, str]  # the dispatcher's, beyond the NATS and sandbox URLs

    def dispatcher(self, nats_url: str, **settings: str) -> DispatcherProcess:
        """A replica (not started) delivering to this sandbox."""
        return DispatcherProcess(nats_url, self.base_url, **(self.settings | settings))

    @abstractmethod
    def requests(self, path: str | None = None) -> list[Record]: ...

    @abstractmethod
    def rejections(self) -> list[Record]: ...

    @abstractmethod
    def add_fault(self, **fields: Any) -> None: ...

    @abstractmethod
    def faults_pending(self) -> bool: ...

    @abstractmethod
    def clear(self) -> None:
        """Forget recorded requests and queued faults (what the provider holds stays)."""

    @abstractmethod
    def clear_faults(self) -> None: ...

    @abstractmethod
    def event_counts(self) -> dict[str, int]:
        """Our event id -> submissions the provider accepted."""

    @abstractmethod
    def recorded(self, event_id: str) -> Recorded | None: ...

    @abstractmethod
    def profile_writes(self, email: str) -> list[Record]:
        """Accepted profile writes for `email` (requests on `profile_path`)."""

    @abstractmethod
    def synced_value(self, email: str, name: str, value: object) -> bool:
        """Whether a profile write for `email` carried `name` (our field or property) = value."""

    @abstractmethod
    def consent(self, email: str, *, sms: bool = False) -> ProviderConsent:
        """A person's email consent (and SMS consent with `sms`), in the terms of
        `expected_at_provider` (tests.dispatcher.helpers.expected_consent)."""

    def expected(
        self, ours: ConsentState, *, sms: bool = False, has_phone: bool = False
    ) -> ProviderConsent:
        """What `consent` must show for our state: a suppressed address gets nothing,
        whatever its opt-in says; SMS consent reaches the provider only with a phone."""
        state = expected_consent(
            email=ours.email_opt_in,
            sms=ours.sms_opt_in and has_phone,
            suppressed=ours.suppressed,
        )
        return state if sms else {k: v for k, v in state.items() if k != "sms"}

    @abstractmethod
    def holds(self, email: str) -> bool:
        """Whether the provider has the person."""

    @abstractmethod
    def erased(self, email: str) -> bool:
        """Whether the person's erasure reached the provider (call `holds` first)."""

    @abstractmethod
    def list_id(self, name: str) -> str:
        """The id of the provider's list called `name`; "" when it has none."""

    @abstractmethod
    def list_members(self, name: str) -> set[str]:
        """The emails in the list called `name` (subscribed, on ActiveCampaign)."""

    @abstractmethod
    def make_list(self, name: str) -> str:
        """A new list of the account, made as an operator would; its id."""

    def mentioning(self, email: str, *texts: str) -> bool:
        """Whether an accepted request names `email` with all `texts`."""
        return any(mentions(r, email, *texts) for r in self.requests())


class KlaviyoProvider(SystemProvider):
    name = "klaviyo"
    profile_path = "/api/profile-import"
    event_path = "/api/event"  # both /api/events and /api/event-bulk-create-jobs
    erasure_path = "/api/data-privacy-deletion-jobs"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.base_url = sandbox.base_url
        self.settings = {}  # the replicas' defaults: Klaviyo's sandbox, no newsletter list

    def requests(self, path: str | None = None) -> list[Record]:
        return self.sandbox.requests(path)

    def rejections(self) -> list[Record]:
        return self.sandbox.rejections()

    def add_fault(self, **fields: Any) -> None:
        self.sandbox.add_fault(**fields)

    def faults_pending(self) -> bool:
        return bool(self.sandbox.state.faults.list())

    def clear(self) -> None:
        self.sandbox.reset()
        self.sandbox.clear_faults()

    def clear_faults(self) -> None:
        self.sandbox.clear_faults()

    def event_counts(self) -> dict[str, int]:
        return self.sandbox.event_counts()

    def recorded(self, event_id: str) -> Recorded | None:
        for request in self.requests():
            for event in _klaviyo_events_in(request["body"]):
                if event.get("unique_id") == event_id:
                    value = event.get("value")
                    return Recorded(
                        event["metric"]["data"]["attributes"]["name"],
                        None if value is None else Decimal(str(value)),
                        event.get("value_currency"),
                        event.get("properties", {}),
                    )
        return None

    def profile_writes(self, email: str) -> list[Record]:
        return [
            r
            for r in self.requests(self.profile_path)
            if r["body"]["data"]["attributes"]["email"] == email
        ]

    def synced_value(self, email: str, name: str, value: object) -> bool:
        for request in self.profile_writes(email):
            attributes = request["body"]["data"]["attributes"]
            if attributes.get(name) == value or attributes.get("properties", {}).get(name) == value:
                return True
        return False

    def consent(self, email: str, *, sms: bool = False) -> ProviderConsent:
        state = klaviyo_consent(self.sandbox.profiles(email=email))
        return state if sms else {k: v for k, v in state.items() if k != "sms"}

    def holds(self, email: str) -> bool:
        return bool(self.profile_writes(email))

    def list_id(self, name: str) -> str:
        return next((r["id"] for r in self.sandbox.lists() if r["name"] == name), "")

    def list_members(self, name: str) -> set[str]:
        found = [r for r in self.sandbox.lists() if r["name"] == name]
        return set(found[0]["members"]) if found else set()

    def make_list(self, name: str) -> str:
        return self.sandbox.create_list(name)

    def erased(self, email: str) -> bool:
        return any(mentions(r, email) for r in self.requests(self.erasure_path))


def _klaviyo_events_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The event attributes of one request: POST /api/events or a bulk create job."""
    data = body.get("data", {})
    if not isinstance(data, dict):
        return []
    attributes = data.get("attributes", {})
    if data.get("type") == "event":
        return [attributes]
    found: list[dict[str, Any]] = []
    bulk = attributes.get("events-bulk-create", {})
    for entry in bulk.get("data", []) if isinstance(bulk, dict) else []:
        found += [e["attributes"] for e in entry["attributes"]["events"]["data"]]
    return found


# A contact's own fields on ActiveCampaign; every other value is a custom field.
AC_STANDARD = {"first_name": "firstName", "last_name": "lastName", "phone": "phone"}
AC_CONTACT = re.compile(r"^/api/3/contacts/(\d+)$")


class ActiveCampaignProvider(SystemProvider):
    name = "activecampaign"
    profile_path = "/api/3/contact/sync"
    event_path = "/event"

    def __init__(self, sandbox: ActiveCampaignSandbox, newsletter_list_id: str) -> None:
        self.sandbox = sandbox
        self.base_url = sandbox.base_url
        self.newsletter_list_id = newsletter_list_id
        # Without credentials the replica uses this sandbox; consent includes list status.
        self.settings = {"provider": "activecampaign", "newsletter_list_id": newsletter_list_id}
        # email -> contact ids seen, so that their deletion can be recognised
        self._ids: dict[str, set[str]] = {}

    def requests(self, path: str | None = None) -> list[Record]:
        return self.sandbox.requests(path)

    def rejections(self) -> list[Record]:
        return self.sandbox.rejections()

    def add_fault(self, **fields: Any) -> None:
        self.sandbox.add_fault(**fields)

    def faults_pending(self) -> bool:
        return bool(self.sandbox.state.faults.list())

    def clear(self) -> None:
        # Not a new account: a running dispatcher remembers its fields, tags and connection.
        self.sandbox.state.clear_log()
        self.clear_faults()

    def clear_faults(self) -> None:
        self.sandbox.state.faults.clear()

    def _orders(self) -> list[Record]:
        return [o for o in self.sandbox.view("orders") if o.get("externalid")]

    def event_counts(self) -> dict[str, int]:
        orders = Counter(str(o["externalid"]) for o in self._orders())
        return dict(Counter(tracked_event_counts(self.sandbox)) + orders)

    def tracked_arrivals(self) -> dict[str, list[datetime]]:
        """Our event id -> when each submission of it was tracked, in order."""
        arrivals: dict[str, list[datetime]] = {}
        for tracked in self.sandbox.view("events"):
            event_id = json.loads(tracked["eventdata"])["event_id"]
            arrivals.setdefault(event_id, []).append(datetime.fromisoformat(tracked["received_at"]))
        return arrivals

    def recorded(self, event_id: str) -> Recorded | None:
        for tracked in self.sandbox.view("events"):
            data = json.loads(tracked["eventdata"])
            if data["event_id"] == event_id:
                value = data.get("value")
                return Recorded(
                    data["metric"],
                    None if value is None else Decimal(value),
                    data.get("currency"),
                    data.get("properties", {}),
                )
        for order in self._orders():
            if order["externalid"] == event_id:
                lines = [{"product_id": p["externalid"]} for p in order["products"]]
                return Recorded(
                    "placed_order",
                    Decimal(str(order["totalPrice"])) / 100,
                    order["currency"],
                    {"order": {"order_id": order["externalid"], "lines": lines}},
                )
        return None

    def profile_writes(self, email: str) -> list[Record]:
        return [
            r
            for r in self.requests(self.profile_path)
            if r["body"]["contact"]["email"].lower() == email.lower()
        ]

    def synced_value(self, email: str, name: str, value: object) -> bool:
        titles = field_titles(self.sandbox)
        for request in self.profile_writes(email):
            contact = request["body"]["contact"]
            if name in AC_STANDARD:
                if contact.get(AC_STANDARD[name]) == value:
                    return True
                continue
            for written in contact.get("fieldValues", []):
                if titles.get(str(written["field"])) == name and written["value"] == value:
                    return True
        return False

    def list_id(self, name: str) -> str:
        return next((str(r["id"]) for r in self.sandbox.view("lists") if r["name"] == name), "")

    def list_members(self, name: str) -> set[str]:
        list_id = self.list_id(name)
        members = self.sandbox.members(list_id) if list_id else {}
        return {email for email, status in members.items() if status == "1"}

    def make_list(self, name: str) -> str:
        return new_list(self.sandbox, name)

    def consent(self, email: str, *, sms: bool = False) -> ProviderConsent:
        state = activecampaign_consent(self.sandbox, email, self.newsletter_list_id)
        return state if sms else {k: v for k, v in state.items() if k != "sms"}

    def expected(
        self, ours: ConsentState, *, sms: bool = False, has_phone: bool = False
    ) -> ProviderConsent:
        """ActiveCampaign mails a list's subscribers: only a newsletter member who may be
        mailed is on the list."""
        state = super().expected(ours, sms=sms, has_phone=has_phone)
        state["can_receive_email"] = state["email"] and ours.newsletter_member
        return state

    def holds(self, email: str) -> bool:
        contacts = self.sandbox.contacts(email)
        self._ids.setdefault(email, set()).update(str(c["id"]) for c in contacts)
        return bool(contacts)

    def erased(self, email: str) -> bool:
        deleted = {
            match.group(1)
            for r in self.requests()
            if r["method"] == "DELETE" and (match := AC_CONTACT.match(r["path"]))
        }
        known = self._ids.get(email, set())
        return bool(known) and known <= deleted and not self.sandbox.contacts(email)


def metric_total(metrics_port: int, name: str, **labels: str) -> float:
    """The sum of a replica's counter `name` over the series matching `labels`."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    total = 0.0
    for series, value in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', series))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total
