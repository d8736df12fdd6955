"""Migration 0023 on a real PostgreSQL: an enrolment keeps no context of its own (its
cause holds it). A downgrade brings the column back, `{}` for the enrolments made
without it, and the upgrade drops it again."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.storage import migrate
from tests.harness import own_database

_COLUMNS = (
    "SELECT count(*) FROM information_schema.columns"
    " WHERE table_name = 'marketing_enrolment' AND column_name = 'context'"
)
_CONTACT = (
    "INSERT INTO marketing_contact"
    " (id, email, custom_properties, email_opt_in, sms_opt_in, push_opt_in)"
    " VALUES (gen_random_uuid(), 'context@example.com', '{}', false, false, false)"
)
_ENROLMENT = (
    "INSERT INTO marketing_enrolment (id, flow_id, contact_id, state, entry_key, trigger_ref,"
    " cause_kind, cause_ref, created_at)"
    " SELECT :id, 'welcome', c.id, 'ACTIVE', '', 'event:context', 'event', '', now()"
    " FROM marketing_contact c LIMIT 1"
)


async def _run(url: str, statement: str, **params: object) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return result.scalar_one_or_none() if result.returns_rows else None
    finally:
        await engine.dispose()


def _do(url: str, statement: str, **params: object) -> object:
    return asyncio.run(_run(url, statement, **params))


def test_an_enrolment_keeps_no_context_and_a_downgrade_gives_it_an_empty_one(
    database_url: str,
) -> None:
    with own_database(database_url, "enrolment_context_migration") as url:
        assert _do(url, _COLUMNS) == 0
        _do(url, _CONTACT)
        made = uuid.uuid4()
        _do(url, _ENROLMENT, id=made)

        migrate.downgrade(url, "0022")

        assert _do(url, _COLUMNS) == 1
        context = "SELECT context FROM marketing_enrolment WHERE id = :id"
        assert _do(url, context, id=made) == {}

        migrate.upgrade(url)

        assert _do(url, _COLUMNS) == 0
        assert _do(url, "SELECT count(*) FROM marketing_enrolment WHERE id = :id", id=made) == 1
