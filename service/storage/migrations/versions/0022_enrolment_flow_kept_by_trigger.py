"""an enrolment's flow is kept by forbidding a flow's removal, not by a foreign key:
`marketing_enrolment.flow_id` loses its foreign key to `marketing_flow`, and triggers
refuse to delete a flow, to empty the table (TRUNCATE) or to change a flow's id.

Why: the foreign key made PostgreSQL look the flow up, `FOR KEY SHARE`, for every
enrolment written, and the flow worker's side-by-side batches all write enrolments of
the same flow (a restock's hundred thousand go to back-in-stock), so each lock of that
one row was shared by several transactions (a multixact). Measured alone, three writers
copying a restock's enrolments spent 22.8 µs of PostgreSQL a row with the key and 16.5
without it (README figure 10). No call deletes a flow or renames one (flows are seeded
and edited in place), so the key guarded against nothing the service does; the triggers
keep that guarantee against anyone else (a script, a console), at the cost of nothing
on the hot path. The old key's `ON DELETE CASCADE` had nothing to cascade for the same
reason. A side effect: UpdateFlow's lock of the flow row no longer waits for the key
locks of enrolments being written (nor they for it); nothing relied on that, as the
worker reads a flow's definition without that lock either way.

The refusal is a `restrict_violation` (what `ON DELETE RESTRICT` raises), which the
service maps to a conflict with stored state.

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSAL = "flows are kept: never deleted, emptied or renamed (enrolments refer to them)"


def upgrade() -> None:
    op.drop_constraint(
        "marketing_enrolment_flow_id_fkey", "marketing_enrolment", type_="foreignkey"
    )
    # A statement-level trigger (TRUNCATE) has no OLD row: only the row-level ones name it.
    op.execute(
        f"""
        CREATE FUNCTION marketing_flow_kept() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_LEVEL = 'ROW' THEN
                RAISE EXCEPTION '{_REFUSAL}: flow %', OLD.id USING ERRCODE = 'restrict_violation';
            END IF;
            RAISE EXCEPTION '{_REFUSAL}' USING ERRCODE = 'restrict_violation';
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER marketing_flow_kept BEFORE DELETE ON marketing_flow"
        " FOR EACH ROW EXECUTE FUNCTION marketing_flow_kept()"
    )
    op.execute(
        "CREATE TRIGGER marketing_flow_id_kept BEFORE UPDATE OF id ON marketing_flow"
        " FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)"
        " EXECUTE FUNCTION marketing_flow_kept()"
    )
    op.execute(
        "CREATE TRIGGER marketing_flow_not_emptied BEFORE TRUNCATE ON marketing_flow"
        " FOR EACH STATEMENT EXECUTE FUNCTION marketing_flow_kept()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER marketing_flow_not_emptied ON marketing_flow")
    op.execute("DROP TRIGGER marketing_flow_id_kept ON marketing_flow")
    op.execute("DROP TRIGGER marketing_flow_kept ON marketing_flow")
    op.execute("DROP FUNCTION marketing_flow_kept()")
    # Enrolments of a flow gone by other means (the triggers dropped by hand, say) go
    # as the key's ON DELETE CASCADE would have taken them: else the key cannot be made.
    op.execute(
        "DELETE FROM marketing_enrolment e"
        " WHERE NOT EXISTS (SELECT 1 FROM marketing_flow f WHERE f.id = e.flow_id)"
    )
    op.create_foreign_key(
        "marketing_enrolment_flow_id_fkey",
        "marketing_enrolment",
        "marketing_flow",
        ["flow_id"],
        ["id"],
        ondelete="CASCADE",
    )
