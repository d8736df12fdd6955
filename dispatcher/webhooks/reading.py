"""Tolerant reading of the values a provider's webhook carries: whatever is
missing or of an unexpected type reads as empty, never as an error."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from marketing_runtime.timestamps import MAX_SECONDS, MIN_SECONDS, to_timestamp

# What the service stores of an Engagement's texts (service/storage/models.py,
# Engagement): a longer value is cut here, not refused there.
ID_CHARS = 128  # external_id, provider_type, campaign_id, flow_id, message_id
BOUNCE_TYPE_CHARS = 16
DETAIL_CHARS = 255
URL_CHARS = 2000  # stored whole (a text column): a bound of our own
TEXT_CHARS = 2000  # any other text (an address, a phone number)

# C0 control characters (U+0000 to U+001F): none belongs in what we store, and
# PostgreSQL refuses a text holding NUL outright (one such engagement would fail
# its whole batch). Tab, line feed, vertical tab, form feed and carriage return
# read as a space (a reason written on two lines stays two words); the others
# are dropped.
_SPACES = "\t\n\v\f\r"
_CONTROLS: dict[int, str | None] = {
    code: " " if chr(code) in _SPACES else None for code in range(0x20)
}


def clean(value: str, limit: int = TEXT_CHARS) -> str:
    """`value` without C0 control characters, cut to `limit` characters."""
    return value.translate(_CONTROLS)[:limit]


def text(value: object, limit: int = TEXT_CHARS) -> str:
    """A string as it is, a number as its digits, `clean`ed; anything else is empty."""
    if isinstance(value, str):
        return clean(value, limit)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return clean(str(value), limit)
    return ""


def first(values: Mapping[str, Any], *keys: str, limit: int = TEXT_CHARS) -> str:
    """The first of `keys` with a non-empty text value in `values` (`text`)."""
    for key in keys:
        found = text(values.get(key), limit)
        if found:
            return found
    return ""


def mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_time(value: str) -> datetime | None:
    """An ISO-8601 time, with or without an offset, or "YYYY-MM-DD HH:MM:SS";
    a time without an offset is taken as UTC. None when it is neither."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def epoch_time(value: object) -> datetime | None:
    """Seconds since the epoch (a number, or a string of digits), or None."""
    if isinstance(value, str):
        digits = value.strip()
        value = int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 20 else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):  # beyond what a datetime holds (or NaN)
        return None


def bounce_type(value: str) -> str:
    """ "hard" or "soft", however the provider spells it ("Hard Bounce", "hard_bounce");
    anything else lowercased (and `clean`ed, to BOUNCE_TYPE_CHARS)."""
    lowered = clean(value, TEXT_CHARS).strip().lower()
    for kind in ("hard", "soft"):
        if lowered.startswith(kind):
            return kind
    return lowered[:BOUNCE_TYPE_CHARS]


def timestamp(when: datetime | None) -> Timestamp | None:
    """`when` as a Timestamp; None for no time or one beyond the Timestamp's range
    (years 1 to 9999 in UTC: an offset can push a time just past either end)."""
    if when is None:
        return None
    ts = to_timestamp(when)
    return ts if MIN_SECONDS <= ts.seconds <= MAX_SECONDS else None
