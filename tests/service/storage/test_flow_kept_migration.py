"""Migration 0022 on a real PostgreSQL: an enrolment's flow is no longer a foreign key,
and a trigger keeps what the key guarded: a flow cannot be deleted nor its id changed,
while editing a flow's other fields goes on as before. A downgrade brings the key back."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from service.storage import migrate
from tests.harness import own_database

_KEYS = (
    "SELECT count(*) FROM pg_constraint"
    " WHERE conrelid = 'marketing_enrolment'::regclass AND contype = 'f'"
    " AND confrelid = 'marketing_flow'::regclass"
)


async def _run(url: str, statement: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement))
            return result.scalar_one_or_none() if result.returns_rows else None
    finally:
        await engine.dispose()


def _do(url: str, statement: str) -> object:
    return asyncio.run(_run(url, statement))


def test_a_flow_can_be_edited_but_never_deleted_nor_renamed(database_url: str) -> None:
    with own_database(database_url, "flow_kept_migration") as url:
        assert _do(url, _KEYS) == 0
        _do(
            url,
            "UPDATE marketing_flow SET live = NOT live, display_name = 'Welcome!'"
            " WHERE id = 'welcome'",
        )
        _do(url, "UPDATE marketing_flow SET id = id WHERE id = 'welcome'")  # the same id: fine
        for refused in (
            "DELETE FROM marketing_flow WHERE id = 'welcome'",
            "UPDATE marketing_flow SET id = 'welcome-2' WHERE id = 'welcome'",
        ):
            with pytest.raises((IntegrityError, DBAPIError), match="never deleted or renamed"):
                _do(url, refused)
        assert _do(url, "SELECT display_name FROM marketing_flow WHERE id = 'welcome'") == (
            "Welcome!"
        )

        migrate.downgrade(url, "0021")
        assert _do(url, _KEYS) == 1
        _do(url, "DELETE FROM marketing_flow WHERE id = 'welcome'")  # the key alone: allowed
        assert _do(url, "SELECT count(*) FROM marketing_flow WHERE id = 'welcome'") == 0
