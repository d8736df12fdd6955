"""The provider interface the dispatcher delivers through, and its value types.

Implementations translate these into one provider's HTTP API and raise only
`dispatcher.providers.errors` exceptions. They never touch the database or the bus.
Each states the limits of its operations (`Limits`), and plans the consent calls
that bring a person to our state (`plan_consent`): the workers size their batches
from the one and run the other, and so know nothing of any one provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

OwnerT = TypeVar("OwnerT")
ItemT = TypeVar("ItemT")
# The operations every provider offers, by the name the gate and the metrics give
# their endpoint. Consent operations are named by each provider (`Limits.consent`).
UPSERT_PROFILE = "upsert_profile"
CREATE_EVENTS = "create_events"
REQUEST_ERASURE = "request_erasure"


@dataclass(frozen=True)
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
class TrackedEvent:
    event_id: str  # the provider's dedupe key (Klaviyo unique_id)
    email: str
    metric: str  # e.g. "placed_order" or a custom event name
    time: datetime
    properties: dict[str, Any] = field(default_factory=dict)
    value: Decimal | None = None
    value_currency: str | None = None


@dataclass(frozen=True)
class ConsentChange:
    """The effective marketing consent of one person. None leaves a channel as is."""

    email: str
    phone: str | None = None
    email_marketing: bool | None = None
    sms_marketing: bool | None = None


@dataclass(frozen=True)
class ConsentState:
    """A person's whole consent state, as every consent-kind payload carries it."""

    change: ConsentChange
    newsletter_member: bool
    suppressed: bool


@dataclass(frozen=True)
class OperationLimits:
    """What one call of a bulk operation may carry. `payload_bytes` (None: no limit)
    is counted by the worker over the bus messages of one call's items: the
    provider's limit on a request body, less room for its own wrapping of them."""

    max_items: int
    payload_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.max_items < 1:
            raise ValueError("an operation takes at least one item per call")


@dataclass(frozen=True)
class Limits:
    """Each bulk operation's limits. `consent` names every call `plan_consent` may
    plan. A profile upsert and an erasure request carry one person per call (their
    methods take one), so they state none."""

    create_events: OperationLimits
    consent: Mapping[str, OperationLimits]


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


class Provider(Protocol):
    limits: Limits

    async def upsert_profile(self, profile: Profile) -> str:
        """Create or update; returns the provider's profile id."""
        ...

    async def create_events(self, events: Sequence[TrackedEvent]) -> None:
        """Record up to `limits.create_events.max_items` events in one call."""
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

    async def aclose(self) -> None: ...
