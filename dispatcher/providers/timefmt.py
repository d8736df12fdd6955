"""Times as every provider's request bodies carry them."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta


def iso_time(value: datetime) -> str:
    """ISO 8601 with an offset; a naive datetime is taken to be UTC."""
    # Two datetimes of one instant are equal (and hash alike) whatever their
    # offsets: the offset is part of the key, as it is of the text.
    return _iso_time(value, value.utcoffset())


# Remembered: a message's thousand beginnings (a restock's) share one time, and
# `isoformat` with an offset costs more than the rest of an event's attributes.
@functools.lru_cache(maxsize=256)
def _iso_time(value: datetime, offset: timedelta | None) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()
