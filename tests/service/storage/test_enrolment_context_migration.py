"""Migration 0023 on a real PostgreSQL: an enrolment keeps no context of its own (its
cause holds it). A downgrade brings the column back, `{}` for the enrolments made
without it, and the upgrade drops it again."""

from __future__ import annotations

import uuid

from service.storage import migrate
from tests.harness import own_database
from tests.service.storage.statements import run_sql

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


def test_an_enrolment_keeps_no_context_and_a_downgrade_gives_it_an_empty_one(
    database_url: str,
) -> None:
    with own_database(database_url, "enrolment_context_migration") as url:
        assert run_sql(url, _COLUMNS) == 0
        run_sql(url, _CONTACT)
        made = uuid.uuid4()
        run_sql(url, _ENROLMENT, id=made)

        migrate.downgrade(url, "0022")

        assert run_sql(url, _COLUMNS) == 1
        context = "SELECT context FROM marketing_enrolment WHERE id = :id"
        assert run_sql(url, context, id=made) == {}

        migrate.upgrade(url)

        assert run_sql(url, _COLUMNS) == 0
        assert run_sql(url, "SELECT count(*) FROM marketing_enrolment WHERE id = :id", id=made) == 1
