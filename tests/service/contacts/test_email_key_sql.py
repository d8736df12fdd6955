"""PostgreSQL's email key (`email_key_sql`, which a full sync joins suppression
on) is the service's `email_key`, for every address the service stores."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from service.common import validation as check
from service.common.sql import email_key_sql

# The characters an address's local part may have (validation._EMAIL).
_LOCAL = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-",
    min_size=1,
    max_size=64,
)
_LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,20}[A-Za-z0-9])?", fullmatch=True)
emails = st.builds(
    lambda local, labels: f"{local}@{'.'.join(labels)}.com",
    _LOCAL,
    st.lists(_LABEL, min_size=1, max_size=3),
)


def test_the_sql_email_key_is_the_services(database_url: str) -> None:
    # No pool: each example runs on an event loop of its own.
    engine = create_async_engine(database_url, poolclass=NullPool)
    query = select(email_key_sql(bindparam("email")))

    async def sql_key(email: str) -> str:
        async with engine.connect() as conn:
            return str(await conn.scalar(query, {"email": email}))

    @settings(max_examples=100, deadline=None)
    @given(emails)
    def agree(email: str) -> None:
        stored = check.normalize_email(email)  # as every contact's email is stored
        assert asyncio.run(sql_key(stored)) == check.email_key(email)

    try:
        agree()
    finally:
        asyncio.run(engine.dispose())
