"""ActiveCampaign request bodies from our value types.

`Profile` on a contact (POST /contact/sync, keyed on email; bulk import alike):

    email -> email            first_name -> firstName    last_name -> lastName
    phone -> phone            external_id, location and every property -> a custom field of
                              that title (text; see fields.py), its value as text

ActiveCampaign overwrites a value with an empty string, so a value that is None or would be
sent empty is left out: the contact keeps what it has. Values are text: strings as they are,
booleans `true`/`false`, numbers in decimal, lists and objects as JSON.

Event tracking takes event names of at most 32 characters. A longer metric is sent as its first
23 characters, "-" and 8 hex digits of its SHA-256: the same metric always maps to the same
name, and two long metrics sharing a prefix stay apart; `eventdata` carries the full name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson

from dispatcher.providers.base import Profile, TrackedEvent
from dispatcher.providers.errors import PermanentProviderError
from dispatcher.providers.timefmt import iso_time

JsonObject = dict[str, Any]
EXTERNAL_ID_FIELD = "external_id"
LOCATION_FIELD = "location"
MAX_EVENT_NAME = 32
_HASHED_PREFIX = MAX_EVENT_NAME - 9


def field_values(profile: Profile) -> dict[str, str]:
    """Custom field title -> text of the profile's values that are set and not empty."""
    values: dict[str, object] = dict(profile.properties)
    values[EXTERNAL_ID_FIELD] = profile.external_id
    values[LOCATION_FIELD] = profile.location
    texts = {title: as_text(value) for title, value in values.items()}
    return {title: text for title, text in texts.items() if text}


def json_titles(profile: Profile) -> set[str]:
    """The titles of the profile's values that are not strings (sent as JSON text)."""
    return {title for title, value in profile.properties.items() if not isinstance(value, str)}


def import_json_titles(profiles: Iterable[Profile]) -> set[str]:
    return {title for profile in profiles for title in json_titles(profile)}


def as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return orjson.dumps(value, default=str).decode()


def _standard(profile: Profile) -> dict[str, str]:
    standard = {
        "firstName": profile.first_name,
        "lastName": profile.last_name,
        "phone": profile.phone,
    }
    return {key: value.strip() for key, value in standard.items() if value and value.strip()}


def contact_sync(email: str, fields: Mapping[str, str], standard: Mapping[str, str]) -> JsonObject:
    """POST /contact/sync: `fields` maps field id -> text."""
    contact: JsonObject = {"email": email, **standard}
    if fields:
        contact["fieldValues"] = [{"field": fid, "value": text} for fid, text in fields.items()]
    return {"contact": contact}


def profile_sync(profile: Profile, ids: Mapping[str, str]) -> JsonObject:
    """The profile's sync body, `ids` mapping each custom field title to its id."""
    values = field_values(profile)
    return contact_sync(
        profile.email, {ids[title]: text for title, text in values.items()}, _standard(profile)
    )


def import_contact(
    profile: Profile, ids: Mapping[str, str], list_id: str | None = None
) -> JsonObject:
    """One contact of POST /import/bulk_import (snake_case names; field and list ids as
    numbers), subscribed to `list_id` when given."""
    standard = _standard(profile)
    contact: JsonObject = {"email": profile.email}
    for ours, theirs in (
        ("firstName", "first_name"),
        ("lastName", "last_name"),
        ("phone", "phone"),
    ):
        if ours in standard:
            contact[theirs] = standard[ours]
    fields = [
        {"id": int(ids[title]), "value": text} for title, text in field_values(profile).items()
    ]
    if fields:
        contact["fields"] = fields
    if list_id is not None:
        contact["subscribe"] = [{"listid": numeric_id(list_id)}]
    return contact


def numeric_id(identifier: str) -> int | str:
    """An id as ActiveCampaign's examples write it: a number, when it is one (and fits the
    64 bits JSON numbers are read into), else the text as given."""
    if identifier.isascii() and identifier.isdigit() and int(identifier) < _LARGEST_ID:
        return int(identifier)
    return identifier


_LARGEST_ID = 2**63


def import_titles(profiles: Iterable[Profile]) -> list[str]:
    return list(dict.fromkeys(title for p in profiles for title in field_values(p)))


def event_name(metric: str) -> str:
    if len(metric) <= MAX_EVENT_NAME:
        return metric
    digest = hashlib.sha256(metric.encode()).hexdigest()[:8]
    return f"{metric[:_HASHED_PREFIX]}-{digest}"


def tracking_fields(event: TrackedEvent) -> dict[str, str]:
    """The form fields of POST /event besides the account's `actid` and `key`."""
    data: JsonObject = {
        "event_id": event.event_id,
        "metric": event.metric,
        "time": iso_time(event.time),
        "properties": event.properties,
    }
    if event.value is not None:
        data["value"] = str(event.value)
        data["currency"] = event.value_currency
    return {
        "event": event_name(event.metric),
        "eventdata": orjson.dumps(data, default=str).decode(),
        "visit": orjson.dumps({"email": event.email}).decode(),
    }


def cents(amount: object) -> int:
    """An amount in the currency's units (number or numeric text) as whole cents."""
    try:
        value = Decimal(str(amount))
    except ArithmeticError as exc:
        raise PermanentProviderError(f"{amount!r} is not an amount", code="amount") from exc
    if not value.is_finite():
        raise PermanentProviderError(f"{amount!r} is not an amount", code="amount")
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
