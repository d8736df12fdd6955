"""The provider's sending, simulated once for both sandboxes: flows (Klaviyo) and automations
(ActiveCampaign) whose messages each sandbox configures, runs started for a person by a
trigger, and each run's messages scheduled by the sandbox's clock and recorded when they fall
due: sent, skipped (the person could not be sent to then) or cancelled (the run ended first).

Each sandbox's adapter (klaviyo/flows.py, activecampaign/automation_flows.py) decides what
starts and ends a run and, when a message falls due, what becomes of it (a `Verdict`), from its
own account. Due messages wait in a heap by due time: `send_due` pops those due by now and asks
the adapter about each. The adapters call it before anything can change what a message depends
on (Klaviyo: every request; ActiveCampaign: every call that takes the account), before every
view and after every move of the clock, so a message is judged on the account as it was when
it fell due, and nothing polls.

    a message as GET /_sandbox/messages shows it:
    {"id", "flow", "flow_name", "run", "step", "channel", "email", "to", "status", "reason",
     "subject", "body", "unique_id", "scheduled_at", "due_at", "decided_at"}

`status` is scheduled, sent, skipped or cancelled; `reason` says why for the last two;
`unique_id` is the trigger event's (Klaviyo's, or "time:<epoch s>" for an event without one),
null for a run started otherwise (an ActiveCampaign enrolment). The subject and body are
rendered (common/rendering.py) when the message falls due, with the trigger's properties as
`event` and what the adapter adds (the person as the account holds them); a message cancelled
before it was due is not rendered (null)."""

from __future__ import annotations

import heapq
import itertools
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.sandbox.common.recording import iso
from dispatcher.sandbox.common.rendering import render

SCHEDULED, SENT, SKIPPED, CANCELLED = "scheduled", "sent", "skipped", "cancelled"
STATUSES = (SCHEDULED, SENT, SKIPPED, CANCELLED)
CHANNELS = ("email", "sms")
_STEP_FIELDS = frozenset({"delay_s", "channel", "subject", "body"})


@dataclass(frozen=True)
class Step:
    """One message of a flow: sent `delay_s` after the trigger."""

    delay_s: float
    subject: str
    body: str = ""
    channel: str = "email"

    @classmethod
    def from_json(cls, document: Any) -> Step:
        if not isinstance(document, dict):
            raise ValueError("a message is a JSON object")
        unknown = set(document) - _STEP_FIELDS
        if unknown:
            raise ValueError(f"unknown message fields: {sorted(unknown)}")
        delay = document.get("delay_s", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            raise ValueError("delay_s must be a number of seconds")
        if not math.isfinite(delay) or delay < 0:
            raise ValueError("delay_s must be finite and at least 0")
        channel = document.get("channel", "email")
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {list(CHANNELS)}")
        texts = {name: document.get(name, "") for name in ("subject", "body")}
        if not all(isinstance(text, str) for text in texts.values()):
            raise ValueError("subject and body are strings")
        return cls(float(delay), texts["subject"], texts["body"], channel)

    def to_json(self) -> dict[str, Any]:
        return {
            "delay_s": self.delay_s,
            "channel": self.channel,
            "subject": self.subject,
            "body": self.body,
        }


def steps_from_json(value: Any) -> tuple[Step, ...]:
    """A flow's "messages": a non-empty list of messages."""
    if not isinstance(value, list) or not value:
        raise ValueError("messages must be a non-empty list")
    return tuple(Step.from_json(item) for item in value)


@dataclass(frozen=True)
class Flow:
    """A flow as its sandbox understood it. `key` names it in the book (a Klaviyo flow's name,
    an ActiveCampaign automation's id); `trigger` and `exit` are the event names that start
    and end its runs (None: none does, a run starts otherwise); `gate` is what the adapter
    checks before each message (a Klaviyo profile property, an ActiveCampaign list).
    `shown` is the flow as GET /_sandbox/flows shows it, in the provider's terms."""

    key: str
    name: str
    steps: tuple[Step, ...]
    shown: Mapping[str, Any]
    trigger: str | None = None
    exit: str | None = None
    gate: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.shown, "messages": [step.to_json() for step in self.steps]}


@dataclass(frozen=True)
class Person:
    """Who a run is for: an email, else a phone number."""

    email: str | None
    phone: str | None = None

    @property
    def key(self) -> str:
        return self.email.lower() if self.email else f"phone:{self.phone}"


@dataclass(eq=False)
class Run:
    """A person's pass through a flow. `key` is the provider's id for it, when it has one
    (an ActiveCampaign enrolment); `context` is what the trigger carried (`event`)."""

    id: int
    flow: Flow
    person: Person
    context: Mapping[str, Any]
    key: str | None
    unique_id: str | None
    messages: list[Message] = field(default_factory=list)
    pending: int = 0  # messages not decided yet


@dataclass(frozen=True)
class Verdict:
    """What becomes of a message that fell due. CANCELLED ends its run: the run's later
    messages are cancelled with the same reason. `context` is what the templates see besides
    `event`; `to` is the address it went (or would have gone) to."""

    status: str
    reason: str | None = None
    to: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(eq=False)
class Message:
    id: int
    run: Run
    step_index: int
    scheduled_s: float
    status: str = SCHEDULED
    reason: str | None = None
    decided_s: float | None = None
    to: str | None = None
    subject: str | None = None
    body: str | None = None

    @property
    def step(self) -> Step:
        return self.run.flow.steps[self.step_index]

    @property
    def due_s(self) -> float:
        return self.scheduled_s + self.step.delay_s

    def to_json(self) -> dict[str, Any]:
        run = self.run
        return {
            "id": self.id,
            "flow": run.flow.key,
            "flow_name": run.flow.name,
            "run": run.id,
            "step": self.step_index,
            "channel": self.step.channel,
            "email": run.person.email,
            "to": self.to,
            "status": self.status,
            "reason": self.reason,
            "subject": self.subject,
            "body": self.body,
            "unique_id": run.unique_id,
            "scheduled_at": iso(self.scheduled_s),
            "due_at": iso(self.due_s),
            "decided_at": None if self.decided_s is None else iso(self.decided_s),
        }


Judge = Callable[[Message], Verdict]


class FlowBook:
    """Flows, their live runs and every message, under one lock. `send_due` calls the
    adapter's `judge` with that lock held: a judge may take its account's locks, so nothing may
    call into the book while holding one of those, except where the account is held first
    (ActiveCampaign's, taken around every call that touches the book)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flows: dict[str, Flow] = {}
        self._names: frozenset[str] = frozenset()  # trigger and exit names listened to
        self._runs: dict[int, Run] = {}  # live ones
        self._messages: list[Message] = []
        self._due: list[tuple[float, int, Message]] = []  # a heap
        self._seen: set[tuple[str, str, str]] = set()  # (event name, person, dedupe key)
        self._ids = itertools.count(1)

    def add(self, flows: Iterable[Flow]) -> None:
        """Add flows; one replaces the flow of its key (runs started keep their steps)."""
        with self._lock:
            for flow in flows:
                self._flows[flow.key] = flow
            self._names = frozenset(
                name for f in self._flows.values() for name in (f.trigger, f.exit) if name
            )

    def flows(self) -> list[Flow]:
        with self._lock:
            return list(self._flows.values())

    def get(self, key: str) -> Flow | None:
        with self._lock:
            return self._flows.get(key)

    def listens(self, name: str) -> bool:
        """Whether a flow starts or ends on events of this name (no lock: a snapshot)."""
        return name in self._names

    def event(
        self, name: str, person: Person, now: float, *, context: Mapping[str, Any], dedupe: str
    ) -> list[Run]:
        """An event of `name` for `person`: it ends their runs of the flows that exit on it and
        starts a run of each flow it triggers. A repeat (same name, person and `dedupe` key)
        does nothing. The runs started."""
        with self._lock:
            seen = (name, person.key, dedupe)
            if seen in self._seen:
                return []
            self._seen.add(seen)
            for flow in self._flows.values():
                if flow.exit == name:
                    reason = f"exit event {name!r}"
                    self._cancel(reason, now, flow=flow.key, person=person.key, run_key=None)
            return [
                self._start(flow, person, now, context, None, dedupe)
                for flow in self._flows.values()
                if flow.trigger == name
            ]

    def start(
        self,
        key: str,
        person: Person,
        now: float,
        *,
        context: Mapping[str, Any],
        run_key: str | None = None,
    ) -> Run | None:
        """A run of the flow `key` (None when there is no such flow)."""
        with self._lock:
            flow = self._flows.get(key)
            return None if flow is None else self._start(flow, person, now, context, run_key, None)

    def _start(
        self,
        flow: Flow,
        person: Person,
        now: float,
        context: Mapping[str, Any],
        run_key: str | None,
        unique_id: str | None,
    ) -> Run:
        run = Run(next(self._ids), flow, person, dict(context), run_key, unique_id)
        self._runs[run.id] = run
        for index in range(len(flow.steps)):
            message = Message(next(self._ids), run, index, now)
            run.messages.append(message)
            self._messages.append(message)
            heapq.heappush(self._due, (message.due_s, message.id, message))
            run.pending += 1
        return run

    def cancel(
        self,
        reason: str,
        now: float,
        *,
        flow: str | None = None,
        person: str | None = None,
        run_key: str | None = None,
    ) -> int:
        """End the live runs matching every criterion given (a flow's key, a person's key, a
        run's provider key); their pending messages are cancelled. How many runs ended."""
        with self._lock:
            return self._cancel(reason, now, flow=flow, person=person, run_key=run_key)

    def _cancel(
        self, reason: str, now: float, *, flow: str | None, person: str | None, run_key: str | None
    ) -> int:
        ended = [
            run
            for run in self._runs.values()
            if (flow is None or run.flow.key == flow)
            and (person is None or run.person.key == person)
            and (run_key is None or run.key == run_key)
        ]
        for run in ended:
            self._end(run, reason, now)
        return len(ended)

    def _end(self, run: Run, reason: str | None, now: float) -> None:
        # The heap keeps the cancelled entries: `send_due` drops them when they surface.
        for message in run.messages:
            if message.status == SCHEDULED:
                message.status, message.reason, message.decided_s = CANCELLED, reason, now
        run.pending = 0
        self._runs.pop(run.id, None)

    def due(self, now: float) -> bool:
        """Whether a message may be due by `now` (no lock: a peek at the heap's top, cheap
        enough for every request)."""
        if not self._due:
            return False
        try:
            return self._due[0][0] <= now
        except IndexError:  # emptied meanwhile
            return False

    def send_due(self, now: float, judge: Judge) -> list[Run]:
        """Decide every message due by `now`, in due order, as `judge` says; the runs that
        finished (all their messages sent or skipped)."""
        finished: list[Run] = []
        if not self.due(now):
            return finished
        with self._lock:
            while self._due and self._due[0][0] <= now:
                _, _, message = heapq.heappop(self._due)
                if message.status == SCHEDULED:
                    self._decide(message, judge(message), finished)
        return finished

    def _decide(self, message: Message, verdict: Verdict, finished: list[Run]) -> None:
        run, step = message.run, message.step
        context = {"event": run.context, **verdict.context}
        message.status, message.reason, message.to = verdict.status, verdict.reason, verdict.to
        message.decided_s = message.due_s  # at the moment it fell due
        message.subject = render(step.subject, context)
        message.body = render(step.body, context)
        run.pending -= 1
        if verdict.status == CANCELLED:
            self._end(run, verdict.reason, message.due_s)
        elif run.pending == 0:
            self._runs.pop(run.id, None)
            finished.append(run)

    def messages(
        self, *, email: str | None = None, flow: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Every message in the order scheduled: to `email` (any case), of the flow `flow`
        (its key or its name), with `status`, when given."""
        wanted = None if email is None else email.lower()
        with self._lock:
            return [
                m.to_json()
                for m in self._messages
                if (wanted is None or (m.run.person.email or "").lower() == wanted)
                and (flow is None or flow in (m.run.flow.key, m.run.flow.name))
                and (status is None or m.status == status)
            ]

    def forget_decided(self) -> None:
        """Forget the messages already sent, skipped or cancelled (recordings); scheduled ones
        and their runs stay."""
        with self._lock:
            self._messages = [m for m in self._messages if m.status == SCHEDULED]

    def clear(self) -> None:
        """Forget every flow, run, message and repeat."""
        with self._lock:
            self._flows.clear()
            self._names = frozenset()
            self._runs.clear()
            self._messages.clear()
            self._due.clear()
            self._seen.clear()
