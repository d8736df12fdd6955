"""Migration 0022 on a real PostgreSQL: an enrolment's flow is no longer a foreign key,
and triggers keep what the key guarded: a flow cannot be deleted, the table emptied nor
a flow's id changed, while editing a flow's other fields goes on as before. A downgrade
brings the key back (and the enrolments of a flow gone meanwhile go, as the key's
cascade would have taken them)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.exc import IntegrityError

from service.storage import migrate
from service.storage.errors import sqlstate_of
from tests.harness import own_database
from tests.service.storage.statements import run_sql

RESTRICT_VIOLATION = "23001"
_KEYS = (
    "SELECT count(*) FROM pg_constraint"
    " WHERE conrelid = 'marketing_enrolment'::regclass AND contype = 'f'"
    " AND confrelid = 'marketing_flow'::regclass"
)
_ENROLMENT = (
    "INSERT INTO marketing_enrolment (id, flow_id, contact_id, state, entry_key, trigger_ref,"
    " cause_kind, cause_ref, created_at)"
    " SELECT :id, :flow, c.id, 'ACTIVE', '', :ref, 'event', '', now()"
    " FROM marketing_contact c LIMIT 1"
)
_COUNT_ENROLMENT = "SELECT count(*) FROM marketing_enrolment WHERE id = :id"
_CONTACT = (
    "INSERT INTO marketing_contact"
    " (id, email, custom_properties, email_opt_in, sms_opt_in, push_opt_in)"
    " VALUES (gen_random_uuid(), 'kept@example.com', '{}', false, false, false)"
)


def test_a_flow_can_be_edited_but_never_deleted_emptied_nor_renamed(database_url: str) -> None:
    with own_database(database_url, "flow_kept_migration") as url:
        assert run_sql(url, _KEYS) == 0
        run_sql(
            url,
            "UPDATE marketing_flow SET live = NOT live, display_name = 'Welcome!'"
            " WHERE id = 'welcome'",
        )
        run_sql(url, "UPDATE marketing_flow SET id = id WHERE id = 'welcome'")  # the same id: fine
        for refused in (
            "DELETE FROM marketing_flow WHERE id = 'welcome'",
            "UPDATE marketing_flow SET id = 'welcome-2' WHERE id = 'welcome'",
            "TRUNCATE marketing_flow CASCADE",
        ):
            with pytest.raises(IntegrityError, match="flows are kept") as refusal:
                run_sql(url, refused)
            assert sqlstate_of(refusal.value) == RESTRICT_VIOLATION, refused
        assert run_sql(url, "SELECT display_name FROM marketing_flow WHERE id = 'welcome'") == (
            "Welcome!"
        )


def test_the_downgrade_brings_the_key_back_without_the_enrolments_of_a_flow_gone(
    database_url: str,
) -> None:
    with own_database(database_url, "flow_kept_downgrade") as url:
        run_sql(url, _CONTACT)
        kept, orphan = uuid.uuid4(), uuid.uuid4()
        run_sql(url, _ENROLMENT, id=kept, flow="welcome", ref="event:kept")
        # A flow gone by other means than the service's: its triggers set aside.
        run_sql(
            url,
            "ALTER TABLE marketing_flow DISABLE TRIGGER USER",
            "DELETE FROM marketing_flow WHERE id = 'win-back'",
            "ALTER TABLE marketing_flow ENABLE TRIGGER USER",
        )
        run_sql(url, _ENROLMENT, id=orphan, flow="win-back", ref="event:orphan")

        migrate.downgrade(url, "0021")

        assert run_sql(url, _KEYS) == 1
        assert run_sql(url, _COUNT_ENROLMENT, id=kept) == 1
        assert run_sql(url, _COUNT_ENROLMENT, id=orphan) == 0
        run_sql(url, "DELETE FROM marketing_flow WHERE id = 'welcome'")  # the key alone: allowed
        assert run_sql(url, _COUNT_ENROLMENT, id=kept) == 0
