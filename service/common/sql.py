"""SQL expressions more than one feature builds queries with."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func


def email_key_sql(email: Any) -> ColumnElement[str]:
    """`validation.email_key` computed by PostgreSQL, of an email stored
    normalised (as every contact's is): the hex SHA-256 of its UTF-8 bytes."""
    return func.encode(func.sha256(func.convert_to(email, "UTF8")), "hex")


# Where a placed order's total is in its event-log row's document ({"email",
# "payload"}): segments compare it, the metrics sum it.
ORDER_TOTAL_PATH = ("payload", "order", "total")
