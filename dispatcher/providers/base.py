"""The provider interface the dispatcher delivers through, and its value types.

Implementations translate these into one provider's HTTP API and raise only
`dispatcher.providers.errors` exceptions. They never touch the database or the bus.
Each states the limits of its operations (`Limits`), encodes an event once as it
will send it (`prepare_event`, whose size the events worker counts against the
limit on a call's body), and plans the consent calls that bring a person to our
state (`plan_consent`): the workers size their batches from these and run the
plans, and so know nothing of any one provider.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

OwnerT = TypeVar("OwnerT")
ItemT = TypeVar("ItemT")
# The operations every provider offers, by the name the gate and the metrics give
# their endpoint. Consent operations are named by each provider (`Limits.consent`).
UPSERT_PROFILE = "upsert_profile"
CREATE_EVENTS = "create_events"
REQUEST_ERASURE = "request_erasure"
START_IMPORT = "start_import"
IMPORT_STATUS = "import_status"
READ_PERSON = "read_person"
# Finding a segment's provider list by name, or creating it (`find_list`).
FIND_LIST = "find_list"
# A person's device token, registered with their profile or deleted (one token a call).
REGISTER_PUSH_TOKEN = "register_push_token"
DELETE_PUSH_TOKEN = "delete_push_token"
# Creating a campaign for a list with its content and sending it (`send_campaign`).
SEND_CAMPAIGN = "send_campaign"
# The profile property (ActiveCampaign: custom field title) holding a campaign recipient's
# own signed link to their preference page, which `{{ unsubscribe_url }}` shows.
PREFERENCES_URL_PROPERTY = "marketing_preferences_url"


@dataclass(frozen=True, slots=True)  # slots: a full sync holds 100,000s at once
class Profile:
    """A person's profile: identifiers plus properties (all optional but email)."""

    email: str
    external_id: str | None = None  # the platform's user id
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    location: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WindowReport:
    """What an answer said of the provider's current fixed window of `seconds` for the
    request's endpoint: it ends in about `reset_s` whole seconds. The shared budget
    learns where the provider's windows begin from it (`dispatcher.budget.log.Edge`)."""

    reset_s: float
    seconds: float


# The reports of the request being answered, collected by the gate around it.
_WINDOW_REPORTS: ContextVar[list[WindowReport] | None] = ContextVar("window_reports", default=None)


def report_window(report: WindowReport) -> None:
    """Called by a provider client on an answer that says where the window stands;
    heard by the gate when the request is one it reserved (else nobody listens)."""
    reports = _WINDOW_REPORTS.get()
    if reports is not None:
        reports.append(report)


@contextmanager
def window_reports() -> Iterator[list[WindowReport]]:
    """The window reports of the requests made inside (in this task)."""
    reports: list[WindowReport] = []
    token = _WINDOW_REPORTS.set(reports)
    try:
        yield reports
    finally:
        _WINDOW_REPORTS.reset(token)


class Leaving(Enum):
    """How far the request on a stamp got, as its client saw it leave. Whether a
    reservation may be given back hangs on it: only one of a request never handed
    over, or seen by its trace not to have sent a byte, may."""

    # Handed to httpx: whether any byte went is unknown until its trace says (a
    # transport that traces nothing never does).
    HANDED_OVER = "handed_over"
    # Its trace reported the connection's steps, or its headers about to go and it
    # was called off there, but no byte of it went.
    NOT_SENT = "not_sent"
    GONE = "gone"  # its first bytes are going


@dataclass(frozen=True)
class RequestStamp:
    """The shared budget's stamp on the request being made, set by the gate around
    it (`stamped`). The budget counts on each request leaving within half its margin
    of its stamp; a request whose stamp aged past that (its body took long to build,
    or the event loop was busy) must not go on it, but on a stamp taken again."""

    operation: str
    age: Callable[[], float]  # seconds since the stamp
    # Young enough for the request to go now; True once a request went on it (it was
    # used: never given back).
    fresh: Callable[[], bool]
    # Give the reservation back and take a new one (waiting for room if need be).
    renew: Callable[[], Awaitable[None]]
    # Where a request that sent no byte is about to leave: exchange the reservation for
    # one of now if the budget has room at once (True), never waiting, for the request
    # holds its connection meanwhile; False when it has none (see `SharedBudget.restamped`).
    restamp: Callable[[], Awaitable[bool]]
    left: Callable[[Leaving], None]  # how far the request on it got; once GONE, gone


_STAMP: ContextVar[RequestStamp | None] = ContextVar("request_stamp", default=None)


@contextmanager
def stamped(stamp: RequestStamp) -> Iterator[None]:
    """The requests made inside (in this task) go on `stamp`."""
    token = _STAMP.set(stamp)
    try:
        yield
    finally:
        _STAMP.reset(token)


def current_stamp() -> RequestStamp | None:
    """The stamp of the request being made, if the gate stamped it."""
    return _STAMP.get()


async def still_fresh() -> None:
    """Right before a request goes (its body built): a stamp that aged past what the
    budget allows is taken again. Outside a stamped request, nothing."""
    stamp = _STAMP.get()
    if stamp is not None and not stamp.fresh():
        await stamp.renew()


@dataclass(frozen=True)
class TrackedEvent:
    event_id: str  # the provider's dedupe key (Klaviyo unique_id)
    email: str
    metric: str  # e.g. "placed_order" or a custom event name
    time: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    value: Decimal | None = None
    value_currency: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An event encoded once, as its provider will send it. `size` is the most
    bytes it adds to the body of a call with other events (its separators and
    any wrapping of its own included); `content` is read by the provider only."""

    event: TrackedEvent
    size: int
    content: bytes


@dataclass(frozen=True, slots=True)  # slots: a full sync holds 100,000s at once
class ConsentChange:
    """The effective marketing consent of one person. None leaves a channel as is."""

    email: str
    phone: str | None = None
    email_marketing: bool | None = None
    sms_marketing: bool | None = None


@dataclass(frozen=True, slots=True)  # slots: a full sync holds 100,000s at once
class ConsentState:
    """A person's whole consent state, as every consent-kind payload carries it."""

    change: ConsentChange
    newsletter_member: bool
    suppressed: bool


@dataclass(frozen=True)
class PushTokenChange:
    """One device token of a person: registered with their profile, or to delete."""

    email: str
    phone: str | None
    token: str
    platform: str  # "ios" / "android"
    vendor: str  # "apns" / "fcm"
    registered: bool


@dataclass(frozen=True)
class TemplateVariable:
    """A contact's value in a campaign's message: `("first_name",)`, `("custom", "tier")`,
    `("email",)` or `("unsubscribe_url",)`; `fallback` is shown when the contact has no
    value (None only for email and unsubscribe_url, which every recipient has)."""

    path: tuple[str, ...]
    fallback: str | None


# A campaign message's template, as the service checked it: text and variables in order.
TemplatePart = str | TemplateVariable


@dataclass(frozen=True)
class CampaignSend:
    """One provider campaign to create and send: `list_id` holds its recipients; `name` is
    unique per campaign part, so the campaign is found again after a lost answer."""

    name: str
    list_id: str
    channel: str  # "email", "sms" or "push"
    subject: tuple[TemplatePart, ...]  # the email subject or push title; () for SMS
    body: tuple[TemplatePart, ...]
    send_at: datetime | None  # None: at once
    from_email: str
    from_label: str
    reply_to: str


@dataclass(frozen=True)
class ListChange:
    """One person into a provider list (`member`) or out of it. The list's id is
    known (found or created first with `find_list`). Neither changes consent."""

    email: str
    list_id: str
    member: bool


@dataclass(frozen=True)
class EnrolmentChange:
    """One enrolment of a person in one of our flows began (`active`) or ended, with what
    each provider needs to start or stop its own flow (bus.proto's EnrolmentChanged).
    Empty texts ask for nothing: no metric, no property, no automation. `others_active`
    (an end only): another enrolment of the person in this flow is still running, so the
    provider's per-person state of the flow (Klaviyo's property, the ActiveCampaign
    automation enrolment) is left as it is."""

    flow_id: str
    enrolment_id: str  # our enrolment's id: the provider's dedupe key for its events
    email: str
    active: bool
    time: datetime  # when we decided the change
    exit_reason: str = ""
    start_metric: str = ""  # Klaviyo: the metric its flow starts on
    exit_metric: str = ""  # Klaviyo: the metric sent when the enrolment ends
    profile_property: str = ""  # Klaviyo: the profile property its flow filters on
    automation_id: str = ""  # ActiveCampaign: the automation to enrol in, or remove from
    context: dict[str, Any] = field(default_factory=dict)  # what the provider's message needs
    entry_key: str = ""  # what the enrolment is per (a cart id, say); empty: once per person
    others_active: bool = False  # an end: another of the person's enrolments in it runs on


@dataclass(frozen=True)
class OperationLimits:
    """What one call of a bulk operation may carry. `max_bytes` (None: no limit) is
    the provider's limit on a call's request body: `wrapping_bytes` of the call's
    own plus the `PreparedEvent.size` of each event. Only the events worker counts
    bytes (an event larger than that alone still goes, alone); consent calls are
    split by `max_items` only, so their limits state no bytes."""

    max_items: int
    max_bytes: int | None = None
    wrapping_bytes: int = 0

    def __post_init__(self) -> None:
        if self.max_items < 1:
            raise ValueError("an operation takes at least one item per call")
        if self.max_bytes is not None and self.max_bytes <= self.wrapping_bytes:
            raise ValueError("a call's body must leave room for items")


def pack(
    items: Sequence[ItemT], sizes: Sequence[int], limits: OperationLimits
) -> list[list[ItemT]]:
    """`items` in order, in calls (jobs) of at most `limits.max_items` and (counting
    `limits.wrapping_bytes` once per call) `limits.max_bytes`. A call is closed
    only when the next item would not fit; an item too large for any call goes
    alone (the provider refuses it, and it fails alone)."""
    jobs: list[list[ItemT]] = []
    job: list[ItemT] = []
    used = limits.wrapping_bytes
    for item, size in zip(items, sizes, strict=True):
        full = len(job) >= limits.max_items or (
            limits.max_bytes is not None and used + size > limits.max_bytes
        )
        if job and full:
            jobs.append(job)
            job, used = [], limits.wrapping_bytes
        job.append(item)
        used += size
    if job:
        jobs.append(job)
    return jobs


@dataclass(frozen=True)
class RateWindow:
    """At most `calls` calls in one fixed window of `seconds` (1, 60, 86,400).
    `clock_aligned`: the provider's windows of this length begin at whole multiples
    of `seconds` on its clock (epoch time), which the budget takes to be within the
    provider's skew of ours (`MARKETING_BUDGET_PROVIDER_SKEW_S`) until a 429 says
    otherwise (dispatcher.budget)."""

    calls: int
    seconds: float
    clock_aligned: bool = False

    def __post_init__(self) -> None:
        if self.calls < 1 or self.seconds <= 0:
            raise ValueError("a rate window allows at least one call in a positive time")


@dataclass(frozen=True)
class RateBucket:
    """One budget the provider keeps for an account: `name` is unique within the
    provider (an endpoint such as `event-bulk-create-jobs`, or `account` where every
    call counts against one budget) and `windows` are all enforced at once."""

    name: str
    windows: tuple[RateWindow, ...]

    def __post_init__(self) -> None:
        if not self.windows:
            raise ValueError("a rate bucket has at least one window")


@dataclass(frozen=True)
class Limits:
    """Each bulk operation's limits. `consent` names every call `plan_consent` may
    plan. A profile upsert and an erasure request carry one person per call (their
    methods take one), so they state none.

    `rates` maps every operation the provider offers (by the name the gate gives
    it) to the buckets one of its calls draws from; `compliance` names the
    operations that carry consent, suppression and erasure, which have a reserved
    share of any bucket they share with other work. `import_profiles` is what one
    bulk profile import (full contact sync) may carry."""

    create_events: OperationLimits
    consent: Mapping[str, OperationLimits]
    rates: Mapping[str, tuple[RateBucket, ...]] = field(default_factory=dict)
    compliance: frozenset[str] = frozenset()
    import_profiles: OperationLimits | None = None
    # The operations whose calls may make several HTTP requests: the provider passes each
    # of their requests through the `RequestPacer` given to `pace_requests`, naming the
    # buckets that request draws from, so the budget counts requests; `rates` then names
    # every bucket a request of the operation may draw from. Any other operation's call
    # is one request, reserved in each of its operation's `rates` before it goes.
    paces_requests: frozenset[str] = frozenset()
    # Every call `plan_lists` may plan, like `consent` for `plan_consent`.
    lists: Mapping[str, OperationLimits] = field(default_factory=dict)
    # Every call `plan_enrolments` may plan. Unlike consent and list calls these may state
    # bytes: the plan itself keeps each call within them (it alone knows its items' sizes).
    enrolments: Mapping[str, OperationLimits] = field(default_factory=dict)
    # Whether the provider has a push channel: device tokens it is given and deletes
    # (`change_push_token`, as REGISTER_PUSH_TOKEN and DELETE_PUSH_TOKEN).
    offers_push: bool = False
    # The channels the provider's campaigns can be sent on through its API (`send_campaign`).
    campaign_channels: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        calls = [*self.consent.values(), *self.lists.values()]
        if any(limit.max_bytes is not None for limit in calls):
            raise ValueError("consent and list calls are split by their number of items only")


class RequestPacer(Protocol):
    """Entered by a provider around each HTTP request it sends for `operation`, with the
    buckets that one request draws from (say, the whole account, or the account and bulk
    import): entering returns once the request may go, its share of every bucket
    counted; leaving says the request has its answer (or failed), which lets the budget
    count it for less. Only the sending goes inside. The dispatcher supplies it (its
    budget, shared by every replica); providers know nothing of how."""

    def __call__(
        self, operation: str, buckets: Sequence[RateBucket]
    ) -> AbstractAsyncContextManager[None]: ...


@contextlib.asynccontextmanager
async def unpaced(operation: str, buckets: Sequence[RateBucket]) -> AsyncIterator[None]:
    """The pacer of a provider nobody paces (tests, tools): every request goes at once."""
    yield


@dataclass(frozen=True)
class BulkCall(Generic[OwnerT]):
    """One provider call over items, each sent for an owner (the work it belongs to).

    `send(owners)` sends the items of the owners given: all of them, or some when
    the caller splits the call by the operation's limits or narrows a refused one."""

    operation: str
    owners: list[OwnerT]
    send: Callable[[Sequence[OwnerT]], Awaitable[None]]

    @classmethod
    def of(
        cls,
        operation: str,
        pairs: Sequence[tuple[OwnerT, ItemT]],
        send_items: Callable[[list[ItemT]], Awaitable[None]],
    ) -> BulkCall[OwnerT]:
        """The call sending each owner's item of `pairs` (an owner has one item here)."""
        item_of = {id(owner): item for owner, item in pairs}

        async def send(owners: Sequence[OwnerT]) -> None:
            await send_items([item_of[id(owner)] for owner in owners])

        return cls(operation, [owner for owner, _ in pairs], send)


@dataclass(frozen=True, slots=True)  # slots: a full sync holds 100,000s at once
class ImportContact:
    """One person of a full contact sync, as the import takes them: the profile
    (consent is set afterwards, by the provider's consent calls: `plan_consent`)."""

    profile: Profile


@dataclass(frozen=True)
class ImportFailure:
    """A person a bulk import refused, and the provider's reason."""

    email: str
    reason: str


@dataclass(frozen=True)
class ImportStatus:
    """Where a bulk import job stands. `done` once the provider has finished it
    (complete or cancelled); `failures` lists the people it refused so far."""

    job_id: str
    done: bool
    total: int
    completed: int
    failed: int
    failures: tuple[ImportFailure, ...] = ()


@dataclass(frozen=True)
class ProviderPerson:
    """A person as the provider holds them, read back for reconciliation.
    `properties` are our contact properties as the provider stores them."""

    email: str
    provider_id: str
    profile: Profile
    email_marketing: bool | None
    sms_marketing: bool | None
    suppressed: bool
    newsletter_member: bool | None


class Provider(Protocol):
    limits: Limits

    async def upsert_profile(self, profile: Profile) -> str:
        """Create or update; returns the provider's profile id."""
        ...

    def prepare_event(self, event: TrackedEvent) -> PreparedEvent:
        """`event` encoded for `create_events`. Raises PermanentProviderError when
        it cannot be encoded (no call could ever carry it)."""
        ...

    async def create_events(self, events: Sequence[PreparedEvent]) -> None:
        """Record up to `limits.create_events.max_items` events in one call, of at
        most `max_bytes` when their sizes and the wrapping add up to no more."""
        ...

    def plan_consent(
        self, states: Sequence[tuple[OwnerT, ConsentState]], newsletter_list_id: str | None
    ) -> list[BulkCall[OwnerT]]:
        """The calls, to run in this order, that bring each owner's person from whatever
        consent state the provider holds to `state` (and into the newsletter list when a
        member and a list is given). A call may hold any number of items: the caller
        splits it by `limits.consent[call.operation]`, keeping the order."""
        ...

    async def request_erasure(self, email: str) -> None:
        """Ask the provider to delete everything about this person."""
        ...

    async def find_list(self, name: str) -> str:
        """The id of the provider's list named `name`, created when it has none
        (the `FIND_LIST` operation)."""
        ...

    async def change_push_token(self, change: PushTokenChange) -> None:
        """Give the provider the token with the person's profile (`registered`), or
        delete it; a token it does not hold counts as deleted. Called only when
        `limits.offers_push`."""
        ...

    def plan_lists(self, changes: Sequence[tuple[OwnerT, ListChange]]) -> list[BulkCall[OwnerT]]:
        """The calls, to run in this order, that put each owner's person into its
        list or take them out of it (consent is left as it is). A person the
        provider holds no profile or contact for is refused (a
        PermanentProviderError naming their item): list calls never create
        people, so a late change cannot bring back someone erased. A call may
        hold any number of items: the caller splits it by `limits.lists[call.operation]`."""
        ...

    def plan_enrolments(
        self,
        changes: Sequence[tuple[OwnerT, EnrolmentChange]],
        accepted: Callable[[OwnerT, str], None],
    ) -> list[BulkCall[OwnerT]]:
        """The calls, to run in this order, that start the provider's flow for each owner's
        person (`active`) or stop it; `changes` in the order they were made. Each call is
        within `limits.enrolments[call.operation]` (items and bytes). A call that succeeds
        tells `accepted(owner, provider_id)` of each owner it sent: the provider's id of the
        enrolment, "" when it keeps none. An owner in no call needs nothing sent (no
        automation, say). A person's calls follow one another in the plan's order; calls
        of other people are independent. Safe to repeat: a change sent again (its answer
        lost, say) starts or sends nothing twice. Planning runs in a thread of its own
        (the enrolments worker plans a part while the part before is sent): it reads
        and writes no state shared with the event loop."""
        ...

    async def start_import(
        self, contacts: Sequence[ImportContact], list_id: str | None = None
    ) -> str:
        """Start one bulk import (an upsert) of up to `limits.import_profiles.max_items`
        people, of at most its `max_bytes`; returns the job id. Consent is not set by
        the import: the caller runs `plan_consent` for the people who have a state.
        With `list_id`, each person imported also joins that list (a campaign's)."""
        ...

    async def send_campaign(self, send: CampaignSend) -> str:
        """Create the provider campaign for `send.list_id` with the content in the
        provider's template syntax (the same fallbacks) and send it (at `send_at`);
        returns the provider's campaign id. Only for `limits.campaign_channels`. Safe to
        repeat: a campaign named `send.name` that exists already is completed and sent,
        not made again."""
        ...

    async def import_status(self, job_id: str) -> ImportStatus:
        """Where the job stands, with every person it refused so far."""
        ...

    async def read_person(
        self, email: str, newsletter_list_id: str | None
    ) -> ProviderPerson | None:
        """The person with this email as the provider holds them (and whether they are in
        the newsletter list, when one is given); None when it holds no such person."""
        ...

    def pace_requests(self, pacer: RequestPacer) -> None:
        """Send each HTTP request inside `pacer` from now on (see `Limits.paces_requests`;
        a provider that makes one request per call may ignore it)."""
        ...

    async def aclose(self) -> None: ...
