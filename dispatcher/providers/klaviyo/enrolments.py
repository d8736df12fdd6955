"""Our flows' enrolments in Klaviyo (bus.proto, EnrolmentChanged). The Klaviyo flow that sends
the messages starts on a metric and filters on a profile property; `plan` turns a batch of
changes into these calls, in this order:

    enrolment_events    POST /api/event-bulk-create-jobs  <= 1,000 events, 5 MB   10/s, 150/m
                        (a plan's only event goes alone: enrolment_event,
                        POST /api/events                                          350/s, 3,500/m)
    enrolment_property  POST /api/profile-import          one person              75/s, 750/m

Each change with a metric for it is one event: `start_metric` when begun (unique_id the
enrolment id), `exit_metric` when ended (unique_id `<enrolment id>:exit`), whose properties are
the enrolment's context plus flow_id and entry_key (and exit_reason at the end); ours win over
a context key of the same name. Many people's events share one bulk job, grouped per profile.

The flow's property (`active` when begun, `exited` when ended) rides in the same event's
profile, `profile.data.attributes.properties`: Klaviyo updates the properties of the profile an
event names (K-spec, create_event and bulk_create_events: "this endpoint allows you to create
new profiles or update existing profile properties"), so no profile-import is needed. An end
while another enrolment of the person in the flow runs on (`others_active`) sends its exit
event but leaves the property as it is ("active"). Per person and property only the newest
change of the plan that sets it sends it (the older values would be overwritten at once, and
two calls of one person could otherwise set them out of order).

A change with a property to set and no metric for it sets it by a profile-import of its own:
the one way that is applied when answered, so a later change, sent after, lands after it.
(A bulk profile import is cheaper, 10,000 a job, but is a job Klaviyo runs later: an "exited"
queued there could land after the next enrolment's "active".) Such changes are expected to be
rare: our Klaviyo flows start on a metric, and an exit metric is what ends them early.

Everything is safe to repeat: the property is set to the same value again, and Klaviyo records
one event per unique_id, profile and metric. An event creates the profile when Klaviyo holds
none; the contacts worker drops the changes of a person erased since (`ErasureMarks`), so a
late one does not bring them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from dispatcher.providers.base import (
    EnrolmentChange,
    OperationLimits,
    PreparedEvent,
    Profile,
    TrackedEvent,
    pack,
)
from dispatcher.providers.klaviyo import bodies

OwnerT = TypeVar("OwnerT")
# The calls of a plan (limits.py gives each its endpoint's budget).
ENROLMENT_EVENTS = "enrolment_events"
ENROLMENT_EVENT = "enrolment_event"
ENROLMENT_PROPERTY = "enrolment_property"
ACTIVE, EXITED = "active", "exited"
EXIT_SUFFIX = ":exit"


@dataclass(frozen=True, slots=True)
class EnrolmentEvent:
    """A change's event as a call sends it, with the profile properties sent along.
    `prepared.size` counts both: the most bytes the pair adds to a bulk job."""

    prepared: PreparedEvent
    properties: dict[str, str]


@dataclass
class Plan(Generic[OwnerT]):
    """`jobs`: the events, in calls packed within the events' limits, in order;
    `properties`: the property-only changes, a call each."""

    jobs: list[list[tuple[OwnerT, EnrolmentEvent]]] = field(default_factory=list)
    properties: list[tuple[OwnerT, Profile]] = field(default_factory=list)


def plan(
    changes: Sequence[tuple[OwnerT, EnrolmentChange]], limits: OperationLimits
) -> Plan[OwnerT]:
    """The calls for `changes` (in the order they were made); a change with neither an event
    nor a property to send is in none."""
    setters = _property_setters(changes)
    planned: Plan[OwnerT] = Plan()
    events: list[tuple[OwnerT, EnrolmentEvent]] = []
    for index, (owner, change) in enumerate(changes):
        properties = setters.get(index, {})
        tracked = event(change)
        if tracked is not None:
            events.append((owner, enrolment_event(tracked, properties)))
        elif properties:
            planned.properties.append((owner, Profile(change.email, properties=properties)))
    planned.jobs = pack(events, [item.prepared.size for _, item in events], limits)
    return planned


def property_value(change: EnrolmentChange) -> str | None:
    """What the change sets the flow's property to; None: it leaves it as it is."""
    if not change.profile_property or change.others_active:
        return None
    return ACTIVE if change.active else EXITED


def _property_setters(
    changes: Sequence[tuple[object, EnrolmentChange]],
) -> dict[int, dict[str, str]]:
    """The property each change sends, by its index: of the changes setting one person's
    property, the newest."""
    newest: dict[tuple[str, str], tuple[int, str]] = {}
    for index, (_, change) in enumerate(changes):
        value = property_value(change)
        if value is not None:
            newest[(_person(change.email), change.profile_property)] = (index, value)
    return {index: {name: value} for (_, name), (index, value) in newest.items()}


def event(change: EnrolmentChange) -> TrackedEvent | None:
    """The start or exit event; None when the change names no metric for it."""
    metric = change.start_metric if change.active else change.exit_metric
    if not metric:
        return None
    ours = {"flow_id": change.flow_id, "entry_key": change.entry_key}
    if not change.active:
        ours["exit_reason"] = change.exit_reason
    return TrackedEvent(
        event_id=change.enrolment_id if change.active else change.enrolment_id + EXIT_SUFFIX,
        email=change.email,
        metric=metric,
        time=change.time,
        properties={**change.context, **ours},
    )


def enrolment_event(tracked: TrackedEvent, properties: dict[str, str]) -> EnrolmentEvent:
    content, size = bodies.bulk_event(tracked)
    size += bodies.profile_properties_size(properties)
    return EnrolmentEvent(PreparedEvent(tracked, size, content), properties)


def _person(email: str) -> str:
    """Klaviyo matches profiles by email regardless of case (as bodies.events_bulk groups)."""
    return email.strip().lower()
