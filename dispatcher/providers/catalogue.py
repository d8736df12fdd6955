"""The provider's campaigns and flows (its catalogue), in provider-neutral terms, and how a
provider says to read them: as `CatalogueStep`s, each one provider operation that the
dispatcher's catalogue refresher (dispatcher/catalogue) passes through the provider gate
like any other call, in order, filling one `CatalogueDraft`.

Steps marked `figures` read figures (Klaviyo's reporting endpoints: 1/s, 2/min, 225/day):
the refresher skips them when the budget could not take them soon, or when they fail, and
the catalogue goes out without those figures (the service keeps the ones it had). A failed
step that lists campaigns or flows fails the refresh: a partial list would make the
service forget what the provider still holds."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


class CatalogueStatus(enum.StrEnum):
    """The seed's CampaignStatus (bus.proto CatalogueStatus)."""

    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"  # a campaign being sent; a live flow
    SENT = "SENT"
    PAUSED = "PAUSED"
    ARCHIVED = "ARCHIVED"


class Channel(enum.StrEnum):
    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"


@dataclass(frozen=True)
class Figures:
    """What the provider reported: `statistics` by its own names, from `source` (a report,
    or the counters of a list answer) over `timeframe` ("" for lifetime counters)."""

    source: str
    timeframe: str
    statistics: Mapping[str, float]


@dataclass(frozen=True)
class CatalogueCampaign:
    id: str
    name: str
    channel: Channel
    status: CatalogueStatus
    provider_status: str
    send_time: datetime | None = None
    figures: Figures | None = None


@dataclass(frozen=True)
class CatalogueFlow:
    id: str
    name: str
    status: CatalogueStatus
    provider_status: str
    trigger_type: str = ""
    figures: Figures | None = None


@dataclass
class CatalogueDraft:
    """What the steps of one refresh read so far, by provider id (in the order listed)."""

    campaigns: dict[str, CatalogueCampaign] = field(default_factory=dict)
    flows: dict[str, CatalogueFlow] = field(default_factory=dict)
    # Figures steps that were skipped or failed, for the log.
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CatalogueStep:
    """One provider operation of a refresh. `run` makes its requests (paced in the
    operation's buckets when the provider paces it) and puts what it read into the draft;
    it is not run when `needed(draft)` says so (nothing to ask about). `figures`: optional,
    see the module docstring."""

    operation: str
    run: Callable[[CatalogueDraft], Awaitable[None]]
    figures: bool = False
    needed: Callable[[CatalogueDraft], bool] = lambda draft: True


@runtime_checkable
class CatalogueSource(Protocol):
    """A provider whose campaigns and flows can be read."""

    def catalogue_steps(self) -> list[CatalogueStep]:
        """The steps of one refresh, in order."""
        ...
