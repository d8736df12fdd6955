"""A flow as the domain holds it: its trigger, entry rule, exits and what the
provider is told, read from and written to its row (service.storage.models
.Flow). The gRPC messages are translated to these by service.flows.messages."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from service.segments import filters
from service.storage.models import Flow

# The fields UpdateFlow may change (its mask's paths).
UPDATABLE = (
    "display_name",
    "description",
    "trigger",
    "entry_rule",
    "exit_conditions",
    "live",
    "provider",
    "completes_after",
)


class TriggerKind(enum.StrEnum):
    EVENT = "EVENT"
    SEGMENT_ENTERED = "SEGMENT_ENTERED"
    NO_PURCHASE = "NO_PURCHASE"
    REGISTRATION = "REGISTRATION"
    BACK_IN_STOCK = "BACK_IN_STOCK"


class EntryRule(enum.StrEnum):
    ONCE_PER_CONTACT = "ONCE_PER_CONTACT"
    ONCE_PER_KEY = "ONCE_PER_KEY"
    REENTER_AFTER_EXIT = "REENTER_AFTER_EXIT"
    REENTER_AFTER_COOLDOWN = "REENTER_AFTER_COOLDOWN"


class State(enum.StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    EXITED = "EXITED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    event_type: str | None = None  # EVENT
    contact_filter: filters.Node | None = None  # EVENT, optional
    segment_id: str | None = None  # SEGMENT_ENTERED
    no_purchase_for: timedelta | None = None  # NO_PURCHASE


@dataclass(frozen=True)
class Entry:
    rule: EntryRule
    key_property: str | None = None  # ONCE_PER_KEY: a dotted path in the event body
    cooldown: timedelta | None = None  # REENTER_AFTER_COOLDOWN


@dataclass(frozen=True)
class Exits:
    events: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    unsubscribed: bool = False


@dataclass(frozen=True)
class ProviderFlow:
    klaviyo_start_metric: str = ""
    klaviyo_exit_metric: str = ""
    klaviyo_property: str = ""
    activecampaign_automation_id: str = ""
    klaviyo_flow_id: str = ""  # for metrics: the Klaviyo flow's own id


@dataclass(frozen=True)
class FlowDefinition:
    id: str
    display_name: str
    description: str
    trigger: Trigger
    entry: Entry
    exits: Exits
    live: bool
    provider: ProviderFlow
    completes_after: timedelta
    built_in: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    active_enrolments: int = field(default=0, compare=False)


def from_row(row: Flow, active_enrolments: int = 0) -> FlowDefinition:
    return FlowDefinition(
        id=row.id,
        display_name=row.display_name,
        description=row.description,
        trigger=Trigger(
            kind=TriggerKind(row.trigger_kind),
            event_type=row.trigger_event,
            contact_filter=None
            if row.trigger_filter is None
            else filters.from_json(row.trigger_filter),
            segment_id=row.trigger_segment,
            no_purchase_for=_seconds(row.no_purchase_for_s),
        ),
        entry=Entry(
            rule=EntryRule(row.entry_rule),
            key_property=row.entry_key_property,
            cooldown=_seconds(row.cooldown_s),
        ),
        exits=Exits(
            events=tuple(row.exit_events),
            segments=tuple(row.exit_segments),
            unsubscribed=row.exit_on_unsubscribe,
        ),
        live=row.live,
        provider=ProviderFlow(
            klaviyo_start_metric=row.klaviyo_start_metric,
            klaviyo_exit_metric=row.klaviyo_exit_metric,
            klaviyo_property=row.klaviyo_property,
            activecampaign_automation_id=row.activecampaign_automation_id,
            klaviyo_flow_id=row.klaviyo_flow_id,
        ),
        completes_after=timedelta(seconds=row.completes_after_s),
        built_in=row.built_in,
        created_at=row.created_at,
        updated_at=row.updated_at,
        active_enrolments=active_enrolments,
    )


def row_values(flow: FlowDefinition) -> dict[str, Any]:
    """The columns a definition sets (all but the id, built_in and times)."""
    t, e, x, p = flow.trigger, flow.entry, flow.exits, flow.provider
    return {
        "display_name": flow.display_name,
        "description": flow.description,
        "trigger_kind": t.kind.value,
        "trigger_event": t.event_type,
        "trigger_filter": None if t.contact_filter is None else filters.to_json(t.contact_filter),
        "trigger_segment": t.segment_id,
        "no_purchase_for_s": _whole_seconds(t.no_purchase_for),
        "entry_rule": e.rule.value,
        "entry_key_property": e.key_property,
        "cooldown_s": _whole_seconds(e.cooldown),
        "exit_events": list(x.events),
        "exit_segments": list(x.segments),
        "exit_on_unsubscribe": x.unsubscribed,
        "live": flow.live,
        "klaviyo_start_metric": p.klaviyo_start_metric,
        "klaviyo_exit_metric": p.klaviyo_exit_metric,
        "klaviyo_property": p.klaviyo_property,
        "activecampaign_automation_id": p.activecampaign_automation_id,
        "klaviyo_flow_id": p.klaviyo_flow_id,
        "completes_after_s": _whole_seconds(flow.completes_after),
    }


def _seconds(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _whole_seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())
