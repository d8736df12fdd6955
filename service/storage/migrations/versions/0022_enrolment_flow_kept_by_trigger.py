"""an enrolment's flow is kept by forbidding a flow's deletion, not by a foreign key:
`marketing_enrolment.flow_id` loses its foreign key to `marketing_flow`, and a trigger
refuses to delete a flow or change its id.

Why: the foreign key made PostgreSQL look the flow up, `FOR KEY SHARE`, for every
enrolment written, and the flow worker's side-by-side batches all write enrolments of
the same flow (a restock's hundred thousand go to back-in-stock), so each lock of that
one row was shared by several transactions (a multixact). Measured alone, three writers
copying a restock's enrolments spent 22.8 µs of PostgreSQL a row with the key and 16.5
without it (README figure 10). No call deletes a flow or renames one (flows are seeded
and edited in place), so the key guarded against nothing the service does; the trigger
keeps that guarantee against anyone else (a script, a console), at the cost of nothing
on the hot path. The old key's `ON DELETE CASCADE` had nothing to cascade for the same
reason.

Revision ID: 0022
Revises: 0021
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(
        "marketing_enrolment_flow_id_fkey", "marketing_enrolment", type_="foreignkey"
    )
    op.execute(
        """
        CREATE FUNCTION marketing_flow_kept() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION
                'flow % is referred to by its enrolments: flows are never deleted or renamed',
                OLD.id
                USING ERRCODE = 'foreign_key_violation';
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


def downgrade() -> None:
    op.execute("DROP TRIGGER marketing_flow_id_kept ON marketing_flow")
    op.execute("DROP TRIGGER marketing_flow_kept ON marketing_flow")
    op.execute("DROP FUNCTION marketing_flow_kept()")
    op.create_foreign_key(
        "marketing_enrolment_flow_id_fkey",
        "marketing_enrolment",
        "marketing_flow",
        ["flow_id"],
        ["id"],
        ondelete="CASCADE",
    )
