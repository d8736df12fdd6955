"""Klaviyo JSON:API request bodies, and the way back from an error pointer to the caller's items.

Field mapping for `Profile` (POST /api/profile-import, `data.type = "profile"`):

    email -> email            phone -> phone_number      external_id -> external_id
    first_name -> first_name  last_name -> last_name     properties -> properties
    location -> properties["location"]

`Profile.location` is free-form text ("Leeds, UK"), so it goes into the custom properties rather
than into Klaviyo's structured `location` object, whose fields (city, region, country, zip, ...)
it cannot be split into reliably. Fields that are None are left out so Klaviyo keeps what it has.

An event bulk job is assembled from each event's encoded resource (`bulk_event`, run once per
event as the worker prepares it), so the events are not encoded again when the call is made.

Every builder of a bulk body also returns a `Blame` that maps Klaviyo's
`errors[].source.pointer` back to indexes into the sequence the caller passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from dispatcher.providers.base import (
    ConsentChange,
    PreparedEvent,
    Profile,
    PushTokenChange,
    TrackedEvent,
)
from dispatcher.providers.timefmt import iso_time

JsonObject = dict[str, Any]

EVENTS_BULK_PREFIX = "/data/attributes/events-bulk-create/data"
PROFILES_PREFIX = "/data/attributes/profiles/data"
_INDEX = re.compile(r"/(\d+)(?=/|$)")


@dataclass(frozen=True)
class Blame:
    """Which caller items an error pointer names.

    `items[i]` holds the caller's indexes behind entry i of the array at `prefix`; `nested`, when
    set, is the array inside each entry whose positions match `items[i]` one to one (bulk events
    are grouped per profile). `whole` blames every item for any pointer under `prefix`.
    """

    prefix: str
    items: tuple[tuple[int, ...], ...]
    nested: str = ""
    whole: bool = False

    def indexes(self, pointer: str) -> tuple[int, ...]:
        if not pointer.startswith(self.prefix):
            return ()
        rest = pointer[len(self.prefix) :]
        if self.whole:
            return tuple(i for group in self.items for i in group)
        match = _INDEX.match(rest)
        if match is None or int(match.group(1)) >= len(self.items):
            return ()
        group = self.items[int(match.group(1))]
        inner = rest[match.end() :]
        if self.nested and inner.startswith(self.nested):
            nested = _INDEX.match(inner, len(self.nested))
            if nested is not None and int(nested.group(1)) < len(group):
                return (group[int(nested.group(1))],)
        return group

    def for_pointers(self, pointers: Sequence[str]) -> tuple[int, ...]:
        return tuple(sorted({i for p in pointers for i in self.indexes(p)}))


def encode(body: object) -> bytes:
    """Compact UTF-8 JSON; Decimal, datetime, date and UUID are written as Klaviyo expects.
    (orjson: a 1,000-event bulk body is encoded several times faster than by `json`.)"""
    return orjson.dumps(body, default=_json_default, option=_ORJSON_OPTIONS)


# Dates and times go through _json_default (Klaviyo's format); int keys become strings.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _without_none(values: JsonObject) -> JsonObject:
    return {k: v for k, v in values.items() if v is not None}


def profile_import(profile: Profile) -> JsonObject:
    properties = dict(profile.properties)
    if profile.location is not None:
        properties["location"] = profile.location
    attributes = _without_none(
        {
            "email": profile.email,
            "phone_number": profile.phone,
            "external_id": profile.external_id,
            "first_name": profile.first_name,
            "last_name": profile.last_name,
            "properties": properties or None,
        }
    )
    return {"data": {"type": "profile", "attributes": attributes}}


def _event_attributes(event: TrackedEvent) -> JsonObject:
    return _without_none(
        {
            "properties": dict(event.properties),
            "metric": {"data": {"type": "metric", "attributes": {"name": event.metric}}},
            "time": iso_time(event.time),
            "value": event.value,
            "value_currency": event.value_currency,
            "unique_id": event.event_id,
        }
    )


def _email_profile(email: str) -> JsonObject:
    return {"data": {"type": "profile", "attributes": {"email": email}}}


def event_create(
    event: TrackedEvent, profile_properties: Mapping[str, Any] | None = None
) -> tuple[JsonObject, Blame]:
    """POST /api/events: one event, with properties for its profile when given (Klaviyo
    sets them on the profile); any pointer into the body blames it."""
    profile = _email_profile(event.email)
    if profile_properties:
        profile["data"]["attributes"]["properties"] = dict(profile_properties)
    attributes = _event_attributes(event) | {"profile": profile}
    body = {"data": {"type": "event", "attributes": attributes}}
    return body, Blame(prefix="/data", items=((0,),), whole=True)


def _bulk_job(entries: list[JsonObject]) -> JsonObject:
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": entries}},
        }
    }


def _profile_entry(email: str, events: list[JsonObject]) -> JsonObject:
    return {
        "type": "event-bulk-create",
        "attributes": {"profile": _email_profile(email), "events": {"data": events}},
    }


# A bulk job is built from its events' resources, each encoded once (`bulk_event`),
# and the encodings of its JSON:API wrapping, cut where the varying parts go.
_JOB_OPEN, _, _JOB_CLOSE = encode(_bulk_job([])).rpartition(b"[]")
_ENTRY = encode(_profile_entry("", []))
_ENTRY_OPEN, _, _ENTRY_REST = _ENTRY.partition(b'""')  # the first "" is the email
_ENTRY_EVENTS, _, _ENTRY_CLOSE = _ENTRY_REST.rpartition(b"[]")  # the last [] the events
# A job's body besides its profile entries and the commas between them.
EVENTS_BULK_WRAPPING_BYTES = len(_JOB_OPEN) + len(b"[]") + len(_JOB_CLOSE)
# Profile properties go right after the entry's email: `"email":"…","properties":{…}`.
_PROPERTIES_KEY = b',"properties":'


def bulk_event(event: TrackedEvent) -> tuple[bytes, int]:
    """The event's resource in a bulk job, and the most bytes it adds to one: the resource
    and a comma, in a profile entry of its own and a comma. (Events of one profile share an
    entry, which takes less.)"""
    resource = encode({"type": "event", "attributes": _event_attributes(event)})
    return resource, len(resource) + len(_ENTRY) + len(encode(event.email))


def profile_properties_size(properties: Mapping[str, Any]) -> int:
    """The most bytes profile properties add to an event's entry in a bulk job (0: none)."""
    return len(_PROPERTIES_KEY) + len(encode(properties)) if properties else 0


def events_bulk(
    events: Sequence[PreparedEvent],
    profile_properties: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[bytes, Blame]:
    """POST /api/event-bulk-create-jobs, encoded: one `event-bulk-create` entry per profile (by
    email, case-insensitively, in order of first appearance), each with that profile's events
    (`PreparedEvent.content`, from `bulk_event`). `profile_properties[i]`, when given, are
    properties for the profile of event i: an entry's profile carries those of its events,
    a later event's value of a name winning (Klaviyo sets them on the profile)."""
    groups: dict[str, list[int]] = {}
    for index, prepared in enumerate(events):
        groups.setdefault(prepared.event.email.strip().lower(), []).append(index)
    entries = [
        b"".join(
            (
                _ENTRY_OPEN,
                encode(events[indexes[0]].event.email),
                _entry_properties(indexes, profile_properties),
                _ENTRY_EVENTS,
                b"[",
                b",".join([events[i].content for i in indexes]),
                b"]",
                _ENTRY_CLOSE,
            )
        )
        for indexes in groups.values()
    ]
    content = b"".join((_JOB_OPEN, b"[", b",".join(entries), b"]", _JOB_CLOSE))
    items = tuple(tuple(indexes) for indexes in groups.values())
    return content, Blame(prefix=EVENTS_BULK_PREFIX, items=items, nested="/attributes/events/data")


def _entry_properties(
    indexes: list[int], profile_properties: Sequence[Mapping[str, Any]] | None
) -> bytes:
    merged: dict[str, Any] = {}
    if profile_properties is not None:
        for index in indexes:
            merged.update(profile_properties[index])
    return _PROPERTIES_KEY + encode(merged) if merged else b""


def _channels(change: ConsentChange, wanted: bool) -> JsonObject:
    """The `subscriptions` object for the channels whose setting equals `wanted`."""
    consent = "SUBSCRIBED" if wanted else "UNSUBSCRIBED"
    channels: JsonObject = {}
    if change.email_marketing is wanted:
        channels["email"] = {"marketing": {"consent": consent}}
    if change.sms_marketing is wanted and change.phone:
        channels["sms"] = {"marketing": {"consent": consent}}
    return channels


def _subscription_profiles(
    changes: Sequence[ConsentChange], wanted: bool
) -> tuple[list[JsonObject], Blame]:
    profiles: list[JsonObject] = []
    items: list[tuple[int, ...]] = []
    for index, change in enumerate(changes):
        channels = _channels(change, wanted)
        if not channels:
            continue
        attributes: JsonObject = {"email": change.email}
        if "sms" in channels:
            attributes["phone_number"] = change.phone
        attributes["subscriptions"] = channels
        profiles.append({"type": "profile", "attributes": attributes})
        items.append((index,))
    return profiles, Blame(prefix=PROFILES_PREFIX, items=tuple(items))


def subscribe_job(
    changes: Sequence[ConsentChange], list_id: str | None
) -> tuple[JsonObject | None, Blame]:
    """POST /api/profile-subscription-bulk-create-jobs for the channels set True.

    No `consented_at` (Klaviyo allows it only with `historical_import`). None when no change grants
    anything (an SMS grant needs a phone number)."""
    profiles, blame = _subscription_profiles(changes, wanted=True)
    if not profiles:
        return None, blame
    data: JsonObject = {
        "type": "profile-subscription-bulk-create-job",
        "attributes": {"profiles": {"data": profiles}},
    }
    if list_id is not None:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}, blame


def unsubscribe_job(changes: Sequence[ConsentChange]) -> tuple[JsonObject | None, Blame]:
    """POST /api/profile-subscription-bulk-delete-jobs for the channels set False (no list:
    the withdrawal is global). None when no change withdraws anything."""
    profiles, blame = _subscription_profiles(changes, wanted=False)
    if not profiles:
        return None, blame
    data = {
        "type": "profile-subscription-bulk-delete-job",
        "attributes": {"profiles": {"data": profiles}},
    }
    return {"data": data}, blame


def suppression_job(emails: Sequence[str], *, lift: bool) -> tuple[JsonObject, Blame]:
    """A suppress job, or with `lift` an unsuppress job (same body, its own type)."""
    profiles = [{"type": "profile", "attributes": {"email": email}} for email in emails]
    body = {
        "data": {
            "type": f"profile-suppression-bulk-{'delete' if lift else 'create'}-job",
            "attributes": {"profiles": {"data": profiles}},
        }
    }
    return body, Blame(prefix=PROFILES_PREFIX, items=tuple((i,) for i in range(len(emails))))


def push_token(change: PushTokenChange) -> JsonObject:
    """POST /api/push-tokens: the token with the person's profile (create or update)."""
    attributes: JsonObject = {"email": change.email}
    if change.phone:
        attributes["phone_number"] = change.phone
    return {
        "data": {
            "type": "push-token",
            "attributes": {
                "token": change.token,
                "platform": change.platform,
                "vendor": change.vendor,
                "enablement_status": "AUTHORIZED",
                "profile": {"data": {"type": "profile", "attributes": attributes}},
            },
        }
    }


def deletion_job(email: str) -> JsonObject:
    return {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {"profile": _email_profile(email)},
        }
    }
