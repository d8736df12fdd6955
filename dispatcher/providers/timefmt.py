"""Times as every provider's request bodies carry them."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_time(value: datetime) -> str:
    """ISO 8601 with an offset; a naive datetime is taken to be UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()
