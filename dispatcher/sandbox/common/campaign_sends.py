"""Campaign sends, simulated once for both sandboxes: the provider-neutral pieces.

What this module offers (each sandbox's adapter decides who is on a campaign's list, who may
be sent to, and how its provider's template syntax renders; klaviyo/campaigns.py,
activecampaign's own):

- `CampaignSchedule`: campaigns waiting to go out, by due time on the sandbox's clock
  (`due(now)` is a cheap peek for every request; `take_due(now)` pops what fell due).
- `SendBuilder` + `CampaignMessageBook`: the message record. A send is built one recipient at
  a time (`sent(...)` / `skipped(...)`) and then recorded whole (`book.record(builder)`),
  which gives its messages consecutive integer ids. The record is compact: per recipient it
  keeps the email, the address it went to, the reason it was skipped (None: sent) and the
  render inputs (a tuple of the values the templates use, as the account held them at send
  time). Subject, body and headers (of a message sent only) are made by the provider's
  compiled templates (`CampaignContent`) only when a message is viewed, so 500,000
  personalised messages cost about a tuple each, not a body each.
- The views, `answer_campaign_views(...)`:

      GET  /_sandbox/campaign-messages[?campaign_id=&email=&status=&limit=&offset=]
           {"messages": [{"id", "campaign_id", "campaign_name", "channel", "email", "to",
             "status": "sent"|"skipped", "reason", "subject", "body", "headers",
             "sent_at"}], "total": n}   (newest send last; limit default 1,000)
      GET  /_sandbox/campaign-messages/summary
           {"campaigns": {"<campaign id>": {"name", "sent": n, "skipped": n}}}
      GET  /_sandbox/campaign-messages/emails?campaign_id=
           text/plain, one recipient email a line (sent only)
      POST /_sandbox/campaign-engagement
           {"seed": int, "default": {"delivered", "opened", "clicked"}?,
            "by_subject": {"<subject template>": {...}}?}: how recipients of campaigns sent
           afterwards engage (200 + the configuration); DELETE turns it off (204)

- `EngagementSeed` (parsed from that body) and `drawn_engagements(seed, message_id, rates,
  body)` (or `engagement_mask`, the same as bits, and `engagements_of` a mask): the
  deterministic draws, `random.Random(f"{seed}:{message id}")`,
  three numbers always drawn in this order (delivered, opened, clicked) so a message's fate
  depends on its id and the probabilities only: delivered with p(delivered), opened with
  p(opened) only if delivered, clicked with p(clicked) only if opened, the click's url the
  first http(s) link of the rendered body, else https://example.com. Each sandbox reports
  what is drawn through its own engagement path (account effects and signed webhooks).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dispatcher.sandbox.common.http import SandboxHandler
from dispatcher.sandbox.common.recording import iso

SENT, SKIPPED = "sent", "skipped"
STATUSES = (SENT, SKIPPED)
DELIVERED, OPENED, CLICKED = "delivered", "opened", "clicked"
ENGAGEMENT_KINDS = (DELIVERED, OPENED, CLICKED)
DEFAULT_LIMIT = 1000
DEFAULT_CLICK_URL = "https://example.com"
_LINK = re.compile(r"https?://[^\s\"'<>]+")

Values = tuple[str | None, ...]
Render = Callable[[Values], str]
Headers = Callable[[int, str | None], dict[str, str]]


@dataclass(frozen=True)
class CampaignContent:
    """What a campaign sends, as the provider's renderer compiled it: `subject` and `body`
    render one recipient's recorded values; `headers` (email) gives the provider's own
    headers of a message from its id and email. `subject_template` is the subject as written
    (the seeded engagement's `by_subject` key)."""

    subject_template: str
    subject: Render
    body: Render
    headers: Headers | None = None


@dataclass
class SendBuilder:
    """One campaign's messages, gathered recipient by recipient in columns (no object per
    message) before `CampaignMessageBook.record` gives them ids."""

    campaign_id: str
    campaign_name: str
    channel: str
    content: CampaignContent
    sent_s: float
    emails: list[str | None] = field(default_factory=list)
    addresses: list[str | None] = field(default_factory=list)  # where it went ("to")
    reasons: list[str | None] = field(default_factory=list)  # None: sent
    values: list[Values] = field(default_factory=list)

    def sent(self, email: str | None, to: str | None, values: Values) -> None:
        self._add(email, to, values, None)

    def skipped(self, email: str | None, to: str | None, values: Values, reason: str) -> None:
        self._add(email, to, values, reason)

    def _add(self, email: str | None, to: str | None, values: Values, reason: str | None) -> None:
        self.emails.append(email)
        self.addresses.append(to)
        self.reasons.append(reason)
        self.values.append(values)

    def __len__(self) -> int:
        return len(self.emails)


@dataclass(frozen=True)
class RecordedSend:
    """A send once recorded: its messages' ids are `first_id` onwards, in recipient order."""

    first_id: int
    columns: SendBuilder
    sent_count: int

    @property
    def campaign_id(self) -> str:
        return self.columns.campaign_id

    def ids(self) -> range:
        return range(self.first_id, self.first_id + len(self.columns))

    def index_of(self, message_id: int) -> int | None:
        index = message_id - self.first_id
        return index if 0 <= index < len(self.columns) else None

    def message(self, index: int) -> dict[str, Any]:
        """The message at `index`, rendered."""
        send, content = self.columns, self.columns.content
        values, email = send.values[index], send.emails[index]
        message_id = self.first_id + index
        reason = send.reasons[index]
        headers = {}
        if reason is None and content.headers is not None:  # a message never mailed has none
            headers = content.headers(message_id, email)
        return {
            "id": message_id,
            "campaign_id": send.campaign_id,
            "campaign_name": send.campaign_name,
            "channel": send.channel,
            "email": email,
            "to": send.addresses[index],
            "status": SENT if reason is None else SKIPPED,
            "reason": reason,
            "subject": content.subject(values),
            "body": content.body(values),
            "headers": headers,
            "sent_at": iso(send.sent_s),
        }

    def sent_indexes(self) -> Iterator[int]:
        return (i for i, reason in enumerate(self.columns.reasons) if reason is None)


@dataclass(frozen=True)
class MessageFilter:
    campaign_id: str | None = None
    email: str | None = None  # any case
    status: str | None = None

    def indexes(self, send: RecordedSend) -> Iterator[int]:
        """The indexes of `send`'s messages that pass (a send of another campaign: none)."""
        if self.campaign_id is not None and send.campaign_id != self.campaign_id:
            return iter(())
        columns = send.columns
        wanted = None if self.email is None else self.email.lower()
        return (
            i
            for i in range(len(columns))
            if (wanted is None or (columns.emails[i] or "").lower() == wanted)
            and (self.status is None or (columns.reasons[i] is None) == (self.status == SENT))
        )


class CampaignMessageBook:
    """Every campaign message recorded, send by send, under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sends: list[RecordedSend] = []
        self._next_id = 1

    def record(self, builder: SendBuilder) -> RecordedSend:
        sent = sum(1 for reason in builder.reasons if reason is None)
        with self._lock:
            recorded = RecordedSend(self._next_id, builder, sent)
            self._next_id += len(builder)
            self._sends.append(recorded)
        return recorded

    def messages(
        self, wanted: MessageFilter, *, limit: int = DEFAULT_LIMIT, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """(the page of matching messages, rendered; how many match in all)."""
        with self._lock:
            sends = list(self._sends)
        matches = ((send, i) for send in sends for i in wanted.indexes(send))
        page: list[dict[str, Any]] = []
        total = 0
        for send, index in matches:
            if offset <= total < offset + limit:
                page.append(send.message(index))
            total += 1
        return page, total

    def find(self, message_id: int) -> dict[str, Any] | None:
        """One message by id, rendered; None when no send holds it."""
        with self._lock:
            sends = list(self._sends)
        for send in sends:
            index = send.index_of(message_id)
            if index is not None:
                return send.message(index)
        return None

    def summary(self) -> dict[str, Any]:
        """{"campaigns": {campaign id: {"name", "sent", "skipped"}}} (a campaign sent in
        several sends, e.g. ActiveCampaign's lists, is counted once)."""
        campaigns: dict[str, dict[str, Any]] = {}
        with self._lock:
            sends = list(self._sends)
        for send in sends:
            entry = campaigns.setdefault(
                send.campaign_id, {"name": send.columns.campaign_name, "sent": 0, "skipped": 0}
            )
            entry["sent"] += send.sent_count
            entry["skipped"] += len(send.columns) - send.sent_count
        return {"campaigns": campaigns}

    def sent_emails(self, campaign_id: str | None) -> Iterator[str]:
        """The email of each message sent (of one campaign when given), in record order."""
        with self._lock:
            sends = list(self._sends)
        for send in sends:
            if campaign_id is None or send.campaign_id == campaign_id:
                emails = send.columns.emails
                yield from (emails[i] or "" for i in send.sent_indexes())

    def clear(self) -> None:
        with self._lock:
            self._sends.clear()


class CampaignSchedule:
    """Campaigns waiting to be sent, by due time (epoch seconds on the sandbox's clock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: list[tuple[float, int, str]] = []  # a heap: (due_s, order, campaign id)
        self._order = itertools.count()

    def add(self, campaign_id: str, due_s: float) -> None:
        with self._lock:
            heapq.heappush(self._due, (due_s, next(self._order), campaign_id))

    def due(self, now: float) -> bool:
        """Whether a campaign may be due by `now` (no lock: a peek, cheap for every request)."""
        try:
            return bool(self._due) and self._due[0][0] <= now
        except IndexError:  # emptied meanwhile
            return False

    def take_due(self, now: float) -> list[tuple[str, float]]:
        """(campaign id, due time) of each campaign due by `now`, in due order, removed."""
        taken: list[tuple[str, float]] = []
        with self._lock:
            while self._due and self._due[0][0] <= now:
                due_s, _, campaign_id = heapq.heappop(self._due)
                taken.append((campaign_id, due_s))
        return taken

    def clear(self) -> None:
        with self._lock:
            self._due.clear()


# Seeded engagement


@dataclass(frozen=True)
class Rates:
    """The probabilities of a sent message's engagements (each given the one before)."""

    delivered: float = 1.0
    opened: float = 0.0
    clicked: float = 0.0

    @classmethod
    def from_json(cls, document: Any, base: Rates, where: str) -> Rates:
        """`document`'s probabilities over `base` (a key left out keeps base's)."""
        if not isinstance(document, dict):
            raise ValueError(f"{where} must be an object of probabilities")
        unknown = set(document) - set(ENGAGEMENT_KINDS)
        if unknown:
            raise ValueError(f"{where}: unknown engagements {sorted(unknown)}")
        chosen = {kind: getattr(base, kind) for kind in ENGAGEMENT_KINDS}
        for kind, value in document.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{where}.{kind} must be a number")
            if not 0 <= value <= 1:
                raise ValueError(f"{where}.{kind} must be between 0 and 1")
            chosen[kind] = float(value)
        return cls(**chosen)


@dataclass(frozen=True)
class EngagementSeed:
    """POST /_sandbox/campaign-engagement: `default` for every message, `by_subject` for
    messages whose subject template is exactly a key (over `default`)."""

    seed: int
    default: Rates
    by_subject: Mapping[str, Rates]

    @classmethod
    def from_json(cls, document: Any) -> EngagementSeed:
        """ValueError names what is wrong."""
        if not isinstance(document, dict):
            raise ValueError("send a JSON object")
        unknown = set(document) - {"seed", "default", "by_subject"}
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        seed = document.get("seed")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        default = Rates.from_json(document.get("default", {}), Rates(), "default")
        subjects = document.get("by_subject", {})
        if not isinstance(subjects, dict):
            raise ValueError("by_subject must map subjects to probabilities")
        by_subject = {
            str(subject): Rates.from_json(rates, default, f"by_subject[{subject!r}]")
            for subject, rates in subjects.items()
        }
        return cls(seed, default, by_subject)

    def rates(self, subject_template: str) -> Rates:
        return self.by_subject.get(subject_template, self.default)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "default": _rates_json(self.default),
            "by_subject": {s: _rates_json(r) for s, r in self.by_subject.items()},
        }


def _rates_json(rates: Rates) -> dict[str, float]:
    return {kind: getattr(rates, kind) for kind in ENGAGEMENT_KINDS}


@dataclass(frozen=True)
class Drawn:
    """One engagement drawn for a message: its kind and, for a click, the url."""

    kind: str
    url: str | None = None


# A message's draws as bits, so a send's can be kept a byte each (engagement_mask).
KIND_BITS = {DELIVERED: 1, OPENED: 2, CLICKED: 4}


def engagement_mask(seed: int, message_id: int, rates: Rates) -> int:
    """What the recipient of message `message_id` does, as KIND_BITS: three numbers of
    random.Random(f"{seed}:{message_id}"), always all three, in this order."""
    draw = random.Random(f"{seed}:{message_id}").random
    delivered_at, opened_at, clicked_at = draw(), draw(), draw()
    if delivered_at >= rates.delivered:
        return 0
    if opened_at >= rates.opened:
        return KIND_BITS[DELIVERED]
    if clicked_at >= rates.clicked:
        return KIND_BITS[DELIVERED] | KIND_BITS[OPENED]
    return KIND_BITS[DELIVERED] | KIND_BITS[OPENED] | KIND_BITS[CLICKED]


def engagements_of(mask: int, body: Callable[[], str]) -> list[Drawn]:
    """The engagements a mask holds, in order; `body` renders the message's body, asked only
    for a click's url."""
    return [
        Drawn(kind, first_link(body()) if kind == CLICKED else None)
        for kind, bit in KIND_BITS.items()
        if mask & bit
    ]


def drawn_engagements(
    seed: int, message_id: int, rates: Rates, body: Callable[[], str]
) -> list[Drawn]:
    """`engagement_mask`'s engagements: delivered, opened, clicked, each only if the one
    before happened."""
    return engagements_of(engagement_mask(seed, message_id, rates), body)


def first_link(body: str) -> str:
    """The first http(s) link of a rendered body (where a click goes), else example.com."""
    found = _LINK.search(body)
    return found.group(0) if found else DEFAULT_CLICK_URL


class SeededEngagement:
    """The engagement configuration in force (None: nothing is engaged)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seed: EngagementSeed | None = None

    def configure(self, seed: EngagementSeed | None) -> None:
        with self._lock:
            self._seed = seed

    def current(self) -> EngagementSeed | None:
        with self._lock:
            return self._seed


# Views


class CampaignSimulation(Protocol):
    """A sandbox's campaign sending, as the views use it."""

    @property
    def book(self) -> CampaignMessageBook: ...

    @property
    def engagement(self) -> SeededEngagement: ...

    def send_due(self) -> None:
        """Send every campaign due by the sandbox's clock (before a view shows anything)."""


def answer_campaign_views(
    handler: SandboxHandler,
    sim: CampaignSimulation,
    path: str,
    query: Mapping[str, str],
    body: bytes,
) -> bool:
    """Answer one of the endpoints above; False when `path` is none of them."""
    match handler.command, path.rstrip("/"):
        case "GET", "/_sandbox/campaign-messages":
            sim.send_due()
            _messages(handler, sim.book, query)
        case "GET", "/_sandbox/campaign-messages/summary":
            sim.send_due()
            handler.send_json(200, sim.book.summary())
        case "GET", "/_sandbox/campaign-messages/emails":
            sim.send_due()
            lines = "".join(f"{e}\n" for e in sim.book.sent_emails(query.get("campaign_id")))
            handler.send(200, lines.encode(), content_type="text/plain; charset=utf-8")
        case "POST", "/_sandbox/campaign-engagement":
            _configure_engagement(handler, sim.engagement, body)
        case "GET", "/_sandbox/campaign-engagement":
            seed = sim.engagement.current()
            handler.send_json(200, None if seed is None else seed.to_json())
        case "DELETE", "/_sandbox/campaign-engagement":
            sim.engagement.configure(None)
            handler.send(204)
        case _:
            return False
    return True


def _messages(handler: SandboxHandler, book: CampaignMessageBook, query: Mapping[str, str]) -> None:
    try:
        status = query.get("status")
        if status is not None and status not in STATUSES:
            raise ValueError(f"status is one of {list(STATUSES)}")
        limit = _count(query, "limit", DEFAULT_LIMIT)
        offset = _count(query, "offset", 0)
    except ValueError as exc:
        handler.send(400, handler.error_body(400, str(exc)))
        return
    wanted = MessageFilter(query.get("campaign_id"), query.get("email"), status)
    page, total = book.messages(wanted, limit=limit, offset=offset)
    handler.send_json(200, {"messages": page, "total": total})


def _count(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit():
        raise ValueError(f"{name} must be a whole number, at least 0")
    return int(text)


def _configure_engagement(handler: SandboxHandler, holder: SeededEngagement, body: bytes) -> None:
    try:
        seed = EngagementSeed.from_json(json.loads(body or b"null"))
    except (ValueError, TypeError) as exc:
        handler.send(400, handler.error_body(400, f"Invalid campaign engagement: {exc}"))
        return
    holder.configure(seed)
    handler.send_json(200, seed.to_json())


def values_of(names: Sequence[str], source: Mapping[str, Any]) -> Values:
    """The render inputs of one recipient: `source`'s value of each name, as text (None when
    missing), in the order the compiled templates expect."""
    return tuple(as_text(source.get(name)) for name in names)


def as_text(value: Any) -> str | None:
    """A stored value as a template shows it: text as is, None as None, anything else as
    JSON writes it (a number, true/false, a list)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | dict | list):
        return json.dumps(value)
    return str(value)
