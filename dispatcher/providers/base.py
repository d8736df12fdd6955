"""The provider interface the dispatcher delivers through, and its value types.

Implementations translate these into one provider's HTTP API and raise only
`dispatcher.providers.errors` exceptions. They never touch the database or the bus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


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


class Provider(Protocol):
    """Bulk limits are attributes so the dispatcher can size its batches."""

    max_events_per_call: int  # Klaviyo: 1,000
    max_subscriptions_per_call: int  # Klaviyo: 1,000
    max_unsubscriptions_per_call: int  # Klaviyo: 100
    max_suppressions_per_call: int  # Klaviyo: 100, for suppress and unsuppress alike

    async def upsert_profile(self, profile: Profile) -> str:
        """Create or update; returns the provider's profile id."""
        ...

    async def create_events(self, events: Sequence[TrackedEvent]) -> None:
        """Record up to `max_events_per_call` events in one call."""
        ...

    async def subscribe(self, changes: Sequence[ConsentChange], list_id: str | None) -> None:
        """Grant marketing consent (and add to `list_id` when given)."""
        ...

    async def unsubscribe(self, changes: Sequence[ConsentChange]) -> None:
        """Withdraw marketing consent on the channels set to False."""
        ...

    async def suppress(self, emails: Sequence[str]) -> None:
        """Put addresses on the provider's suppression list (no marketing at all)."""
        ...

    async def unsuppress(self, emails: Sequence[str]) -> None:
        """Take addresses off the suppression list that `suppress` put them on (a
        withdrawn consent stays withdrawn)."""
        ...

    async def request_erasure(self, email: str) -> None:
        """Ask the provider to delete everything about this person."""
        ...

    async def aclose(self) -> None: ...
