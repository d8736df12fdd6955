"""Klaviyo's metric-triggered flows, simulated (the scheduling and recording are
common/flows.py's). A flow, as POST /_sandbox/flows takes it:

    {"name": "Welcome", "trigger_metric": "Started Welcome", "exit_metric": "Exited Welcome",
     "filter_property": "flow_welcome",
     "messages": [{"delay_s": 0, "channel": "email", "subject": "Welcome {{ person.first_name }}",
                   "body": "See {{ event.product_url }}"}]}

`name` is the flow's key (a flow posted again under it replaces it); `exit_metric` and
`filter_property` are optional; `channel` is email (default) or sms. The flow's Klaviyo id
(GET /api/flows, the flows' `id`) is made from its name (catalogue.py `flow_id`).

- An event of `trigger_metric` accepted by POST /api/events or /api/event-bulk-create-jobs
  starts a run for its profile: each message is due `delay_s` after the event arrived, with the
  event's properties as `event` in its templates and the profile (fields, `properties`) as
  `person`. Klaviyo keeps the first of events with one `unique_id` for a profile and metric
  (without one, the event's time to the second): a repeat starts and ends nothing.
- An event of `exit_metric` for the profile cancels its runs' pending messages at once.
- When a message falls due: a `filter_property` set on the profile to anything but "active"
  cancels it and the rest of the run (a flow filter; Klaviyo checks them at each step). A
  property not set at all passes: the sandbox CHOOSES this so that a trigger arriving before the
  profile update that sets the property still sends.
- An email is skipped (recorded with the reason) when the profile is unsubscribed from email
  marketing or has any suppression at that moment, or has no email; an SMS when it is not
  subscribed to SMS marketing or has no phone number. A never-subscribed profile gets flow
  emails, as Klaviyo sends metric-triggered flows to anyone not suppressed.
- Deleting a profile (a data privacy deletion job) cancels its runs.
- A message sent is reported to the webhooks (webhook_events.py): `sent` hears of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from dispatcher.sandbox.common.clock import SandboxClock
from dispatcher.sandbox.common.flows import (
    CANCELLED,
    SENT,
    SKIPPED,
    Flow,
    FlowBook,
    Message,
    Person,
    Verdict,
    steps_from_json,
)
from dispatcher.sandbox.klaviyo.catalogue import flow_id
from dispatcher.sandbox.klaviyo.consent import SUBSCRIBED, UNSUBSCRIBED, ConsentBook
from dispatcher.sandbox.klaviyo.profiles import ProfileStore

ACTIVE = "active"
EVENTS_PATH = "/api/events"
_IDENTITY = {"email", "phone_number", "external_id", "id", "anonymous_id"}
BULK_EVENTS_PATH = "/api/event-bulk-create-jobs"
_FIELDS = frozenset({"name", "trigger_metric", "exit_metric", "filter_property", "messages"})


class KlaviyoFlows:
    """The flows of one Klaviyo sandbox, over its profiles and consent."""

    def __init__(
        self,
        clock: SandboxClock,
        profiles: ProfileStore,
        consent: ConsentBook,
        *,
        sent: Callable[[Message], None] | None = None,
    ) -> None:
        self._clock = clock
        self._profiles = profiles
        self._consent = consent
        self._sent = sent  # told of each message sent (with the book held)
        self.book = FlowBook()

    @property
    def clock(self) -> SandboxClock:
        return self._clock

    def add_flows(self, documents: list[Any]) -> list[dict[str, Any]]:
        flows = [flow_from_json(document) for document in documents]
        self.book.add(flows)
        return [flow.to_json() for flow in flows]

    def flow_list(self) -> list[dict[str, Any]]:
        return [flow.to_json() for flow in self.book.flows()]

    def clear_flows(self) -> None:
        self.book.clear()

    def messages(
        self, email: str | None = None, flow: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        self.send_due()
        return self.book.messages(email=email, flow=flow, status=status)

    def send_due(self) -> None:
        self.book.send_due(self._clock(), self._judge)

    def events_accepted(self, path: str, document: Any, now: float) -> None:
        """Events of an accepted POST (validated): those of a metric a flow listens on start
        or end runs."""
        if path not in (EVENTS_PATH, BULK_EVENTS_PATH):
            return
        for profile, event in _events(path, document):
            metric = event["metric"]["data"]["attributes"]["name"]
            if not self.book.listens(metric):
                continue
            person = self._person(profile)
            if person is not None:
                properties = event.get("properties") or {}
                dedupe = event.get("unique_id") or f"time:{_second(event.get('time'), now)}"
                self.book.event(metric, person, now, context=properties, dedupe=dedupe)

    def profile_deleted(self, email: str | None, phone: str | None, now: float) -> None:
        person = Person(email, phone)
        if email or phone:
            self.book.cancel("profile deleted", now, person=person.key)

    def _person(self, attributes: dict[str, Any]) -> Person | None:
        """Who an event's profile is: its email or phone, else the stored profile's."""
        email, phone = attributes.get("email"), attributes.get("phone_number")
        if not email and not phone:
            for identifier in ("id", "external_id"):
                if attributes.get(identifier):
                    stored = self._profiles.find(identifier, str(attributes[identifier]))
                    if stored is not None:
                        email, phone = stored.get("email"), stored.get("phone_number")
                        break
        return Person(email, phone) if email or phone else None

    def _judge(self, message: Message) -> Verdict:
        run = message.run
        person, gate = run.person, run.flow.gate
        profile = self._stored(person)
        context = {"person": _person_context(profile, person)}
        value = (profile or {}).get("properties", {}).get(gate) if gate else None
        if value is not None and value != ACTIVE:
            dropped = f"profile property {gate} is {value!r}, not {ACTIVE!r} (flow filter)"
            return Verdict(CANCELLED, dropped, context=context)
        phone = person.phone or (profile or {}).get("phone_number")
        reachable = Person(person.email, phone)
        channel = message.step.channel
        reason = self._unreachable(reachable, channel)
        to = reachable.email if channel == "email" else reachable.phone
        if reason is None and self._sent is not None:
            self._sent(message)
        return Verdict(SENT if reason is None else SKIPPED, reason, to, context)

    def _stored(self, person: Person) -> dict[str, Any] | None:
        if person.email:
            return self._profiles.find("email", person.email)
        return self._profiles.find("phone_number", str(person.phone))

    def _unreachable(self, person: Person, channel: str) -> str | None:
        """Why a message on `channel` cannot go to the person now; None when it can."""
        consent = self._consent.find(person.email, person.phone)
        if channel == "sms":
            if not person.phone:
                return "the profile has no phone number"
            if consent is None or consent.consent["sms"] != SUBSCRIBED:
                return "not subscribed to SMS marketing"
            return None
        if not person.email:
            return "the profile has no email address"
        if consent is None:
            return None
        if consent.consent["email"] == UNSUBSCRIBED:
            return "unsubscribed from email marketing"
        if consent.suppressions:
            return f"suppressed ({', '.join(sorted(consent.suppressions))})"
        return None


def flow_from_json(document: Any) -> Flow:
    if not isinstance(document, dict):
        raise ValueError("a flow is a JSON object")
    unknown = set(document) - _FIELDS
    if unknown:
        raise ValueError(f"unknown flow fields: {sorted(unknown)}")
    name, trigger = document.get("name"), document.get("trigger_metric")
    exit_metric, gate = document.get("exit_metric"), document.get("filter_property")
    for field, value, required in (
        ("name", name, True),
        ("trigger_metric", trigger, True),
        ("exit_metric", exit_metric, False),
        ("filter_property", gate, False),
    ):
        if (required or value is not None) and (not isinstance(value, str) or not value):
            raise ValueError(f"{field} must be a non-empty string")
    shown = {"id": flow_id(str(name)), "name": name, "trigger_metric": trigger}
    shown |= {"exit_metric": exit_metric, "filter_property": gate}
    steps = steps_from_json(document.get("messages"))
    return Flow(str(name), str(name), steps, shown, trigger=trigger, exit=exit_metric, gate=gate)


def event_profiles(path: str, document: Any) -> list[dict[str, Any]]:
    """The profile attributes an accepted event POST carries that set something
    beyond who the person is (properties, location or fields): Klaviyo applies them
    to the profile as it records the event. Events that name the person alone add
    nothing here, so a bench's million events do not fill the sandbox with profiles."""
    if path not in (EVENTS_PATH, BULK_EVENTS_PATH):
        return []
    found = {id(profile): profile for profile, _ in _events(path, document)}
    return [p for p in found.values() if set(p) - _IDENTITY]


def _events(path: str, document: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(profile attributes, event attributes) of each event in a validated body."""
    attributes = document["data"]["attributes"]
    if path == EVENTS_PATH:
        yield attributes["profile"]["data"]["attributes"], attributes
        return
    for entry in attributes["events-bulk-create"]["data"]:
        entry_attributes = entry["attributes"]
        profile = entry_attributes["profile"]["data"]["attributes"]
        for event in entry_attributes["events"]["data"]:
            yield profile, event["attributes"]


def _second(time: Any, now: float) -> int:
    """The event's time (ISO 8601, validated; naive is UTC) to the second, else arrival's."""
    if not isinstance(time, str):
        return int(now)
    moment = datetime.fromisoformat(time)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _person_context(profile: dict[str, Any] | None, person: Person) -> dict[str, Any]:
    """`person` in templates: the stored profile's fields and properties (Klaviyo's
    `{{ person.first_name }}`), or the identity alone for a profile the account does not hold."""
    if profile is None:
        return {"email": person.email, "phone_number": person.phone, "properties": {}}
    return profile
