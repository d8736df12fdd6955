"""Field rules shared by every use case. Each check appends to a Violations
collector under the request path it is given, so one call reports every bad
field at once."""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, TypeVar

from marketing_runtime.money import decimal_amount
from marketing_runtime.person_keys import person_key

from service.errors import Violations
from service.storage.models import Contact

MAX_EMAIL_LENGTH = 254
# Klaviyo's limits for one event (PROVIDERS.md): we enforce them at the door so
# the dispatcher never holds an event the provider will refuse.
# 5 MB is the limit of the whole request body; the payload travels in it as the
# event's properties, wrapped in JSON:API that names the metric (<= 127
# characters), the profile's email (<= 254), the time, value and currency and
# the unique_id (the event id: <= 128 characters, <= 256 bytes escaped): under
# 1,100 bytes in all, even as a one-event bulk job. The payload gets what is
# left after a margin of 4 KiB for that wrapper.
PROVIDER_MAX_BODY_BYTES = 5 * 1024 * 1024
EVENT_WRAPPER_MARGIN_BYTES = 4 * 1024
MAX_EVENT_BYTES = PROVIDER_MAX_BODY_BYTES - EVENT_WRAPPER_MARGIN_BYTES
MAX_PROPERTIES = 400
MAX_STRING_BYTES = 100 * 1024
MAX_ARRAY_ITEMS = 4000
MAX_NESTING = 10

_EMAIL = re.compile(
    r"^(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)$"
)
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Every amount is held to what marketing_contact.lifetime_value, NUMERIC(20, 9),
# can store: 11 integer digits. (Providers take amounts as JSON numbers.)
_AMOUNT_COLUMN: Any = Contact.__table__.c.lifetime_value.type
MAX_MONEY_UNITS: int = 10 ** (_AMOUNT_COLUMN.precision - _AMOUNT_COLUMN.scale) - 1


T = TypeVar("T")


def enum_values(
    v: Violations, field: str, numbers: Iterable[int], known: Mapping[Any, T]
) -> list[T]:
    """The values a repeated enum field names (a list filter's states), each
    unknown or UNSPECIFIED one a violation at its index."""
    found = []
    for index, number in enumerate(numbers):
        if number in known:
            found.append(known[number])
        else:
            v.add(f"{field}[{index}]", "INVALID_VALUE", "a value other than UNSPECIFIED")
    return found


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively, as the providers do."""
    return email.strip().lower()


def email_key(email: str) -> str:
    """SHA-256 of the normalised email: the per-person ordering and suppression key."""
    return normalized_email_key(normalize_email(email))


# `email_key` of an email that is normalised already: the dispatcher's
# fencing key too, so it is the runtime's.
normalized_email_key = person_key


def check_email(v: Violations, field: str, email: str) -> None:
    if not email.strip():
        v.add(field, "REQUIRED", "an email address is required")
        return
    email = email.strip()
    match = _EMAIL.fullmatch(email)
    if len(email) > MAX_EMAIL_LENGTH or match is None or len(match["local"]) > 64:
        v.add(field, "INVALID_EMAIL", f"{email[:80]!r} is not a valid email address")
        return
    tld = match["domain"].rsplit(".", 1)[-1]
    if tld.isdigit():
        v.add(field, "INVALID_EMAIL", f"{email[:80]!r} has no valid top-level domain")


def check_required(v: Violations, field: str, value: str | None) -> None:
    if value is None or not value.strip():
        v.add(field, "REQUIRED", "this field is required")


def check_length(v: Violations, field: str, value: str | None, limit: int) -> None:
    """Length, and no NUL character (PostgreSQL text cannot hold one)."""
    if value is None:
        return
    if len(value) > limit:
        v.add(field, "TOO_LONG", f"at most {limit} characters")
    elif "\x00" in value:
        v.add(field, "INVALID_CHARACTER", "must not contain NUL characters")


def column_length(column: Any) -> int:
    """The declared length of a String column of `service.storage.models`."""
    return int(column.type.length)


def check_text(v: Violations, field: str, value: str | None, column: Any) -> None:
    """`value` fits the column it is stored in and holds no NUL."""
    check_length(v, field, value, column_length(column))


def check_phone(v: Violations, field: str, phone: str | None) -> None:
    """E.164 or absent (None). An empty phone is refused: the provider refuses
    it, and leaving the field out keeps the stored phone."""
    if phone is not None and not _E164.fullmatch(phone):
        v.add(field, "INVALID_PHONE", "must be an E.164 number such as +4915112345678")


_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")


def is_e164(phone: str) -> bool:
    return _E164.fullmatch(phone) is not None


def phone_as_stored(phone: str) -> str:
    """A phone a provider reported, written as contacts' phones are stored
    (E.164), when only its punctuation differs: "+49 151 1234-5678" and
    "0049 (151) 12345678" are "+4915112345678". A number without its country
    code stays as it is (it cannot be guessed)."""
    digits = _PHONE_PUNCTUATION.sub("", phone)
    return "+" + digits[2:] if digits.startswith("00") else digits


def check_language(v: Violations, field: str, language: str | None) -> None:
    if language and (len(language) > 35 or not _LANGUAGE.fullmatch(language)):
        v.add(field, "INVALID_LANGUAGE", "must be a BCP 47 language tag such as de-DE")


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(v: Violations, field: str, tz: str | None) -> None:
    if tz and tz not in _time_zones():
        v.add(field, "INVALID_TIMEZONE", "must be an IANA time zone such as Europe/Berlin")


def check_ip(v: Violations, field: str, ip: str | None) -> None:
    if not ip:
        return
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        v.add(field, "INVALID_IP_ADDRESS", "must be an IPv4 or IPv6 address")


def check_not_future(
    v: Violations, field: str, when: datetime | None, now: datetime, skew: timedelta
) -> None:
    if when is not None and when > now + skew:
        v.add(
            field,
            "TIMESTAMP_IN_FUTURE",
            f"lies more than {int(skew.total_seconds())} s in the future",
        )


def check_request_id(v: Violations, field: str, request_id: str) -> uuid.UUID | None:
    if not request_id:
        return None
    if not _UUID.fullmatch(request_id):
        v.add(field, "INVALID_REQUEST_ID", "must be a UUID in 8-4-4-4-12 hex form")
        return None
    return uuid.UUID(request_id)


def money_amount(
    v: Violations, field: str, currency: str, units: int, nanos: int, *, allow_negative: bool
) -> Decimal | None:
    """Validate a Money triple and return its exact amount, or None if bad."""
    if not check_money(v, field, currency, units, nanos, allow_negative=allow_negative):
        return None
    return decimal_amount(units, nanos)


def check_money(
    v: Violations, field: str, currency: str, units: int, nanos: int, *, allow_negative: bool
) -> bool:
    """Validate a Money triple; True if it is good. (No Decimal: events carry
    several amounts each, and this runs for every one of them.)"""
    ok = True
    if not _CURRENCY.fullmatch(currency):
        v.add(f"{field}.currency_code", "INVALID_CURRENCY", "must be an ISO 4217 code like EUR")
        ok = False
    if not -999_999_999 <= nanos <= 999_999_999 or (units * nanos < 0):
        v.add(f"{field}.nanos", "OUT_OF_RANGE", "must be within ±999,999,999, same sign as units")
        ok = False
    if not -MAX_MONEY_UNITS <= units <= MAX_MONEY_UNITS:
        v.add(f"{field}.units", "OUT_OF_RANGE", f"must be within ±{MAX_MONEY_UNITS:,}")
        ok = False
    # Units and nanos share a sign (checked above), so either one tells.
    if ok and (units < 0 or nanos < 0) and not allow_negative:
        v.add(field, "OUT_OF_RANGE", "must not be negative")
        ok = False
    return ok


def check_properties(v: Violations, field: str, properties: dict[str, Any]) -> None:
    """Klaviyo's shape limits for free-form properties."""
    if len(properties) > MAX_PROPERTIES:
        v.add(field, "TOO_MANY_PROPERTIES", f"at most {MAX_PROPERTIES} properties")
    problem = shape_problem(properties)
    if problem:
        v.add(field, "INVALID_PROPERTIES", problem)


def shape_problem(value: Any, depth: int = 1) -> str | None:
    """Why a JSON value breaks the provider's limits (or PostgreSQL's), or None."""
    return _shape_problem(value, depth)


def _shape_problem(value: Any, depth: int) -> str | None:
    """`depth` is the nesting level of `value` if it is an object or array;
    scalars add no level."""
    if isinstance(value, dict | list) and depth > MAX_NESTING:
        return f"nested deeper than {MAX_NESTING} levels"
    if isinstance(value, str):
        if len(value.encode()) > MAX_STRING_BYTES:
            return f"a string is longer than {MAX_STRING_BYTES} bytes"
        return "a string contains a NUL character" if "\x00" in value else None
    children: list[Any]
    if isinstance(value, dict):
        if any("\x00" in key for key in value):
            return "a key contains a NUL character"
        children = list(value.values())
    elif isinstance(value, list):
        if len(value) > MAX_ARRAY_ITEMS:
            return f"an array has more than {MAX_ARRAY_ITEMS} items"
        children = value
    else:
        return None
    for child in children:
        problem = _shape_problem(child, depth + 1)
        if problem:
            return problem
    return None


def encoded_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
