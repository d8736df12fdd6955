"""enrolments begun together: the outbox and the timers keep one row for the
enrolments one decision began (a restock's batch), not one per person.

- A partial index over the outbox rows of kind `enrolments.begun` that hold many
  people's beginnings (`contact_key` empty; one person's row is keyed by them). An
  erasure finds the person's rows by their contact key, and these rows have none;
  it reads them by this index and takes the person's beginnings out
  (`service/deliveries/outbox.py`). The index holds only those rows: one per batch
  of up to 1,000 beginnings.
- A timer may be no one person's (`contact_id` NULL): one `enrolments_end` timer
  completes the enrolments begun in a flow at one instant (`service/flows/timers.py`).

Going back refuses while `enrolments.begun` rows wait to be published or re-driven
(PENDING, FAILED): a release before cannot read them. Let the outbox drain first.

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ix_marketing_outbox_enrolments_begun"


def upgrade() -> None:
    op.alter_column("marketing_timer", "contact_id", nullable=True)
    op.create_index(
        _NAME,
        "marketing_outbox",
        ["seq"],
        postgresql_where=sa.text("kind = 'enrolments.begun' AND contact_key = ''"),
    )


def downgrade() -> None:
    waiting = op.get_bind().scalar(
        sa.text(
            "SELECT count(*) FROM marketing_outbox "
            "WHERE kind = 'enrolments.begun' AND status IN ('PENDING', 'FAILED')"
        )
    )
    if waiting:
        raise RuntimeError(
            f"{waiting} outbox rows of kind enrolments.begun are PENDING or FAILED: a release "
            "before migration 0019 cannot read them. Let them be delivered (or dropped) first."
        )
    op.drop_index(_NAME, table_name="marketing_outbox")
    # Each decision's completion becomes its enrolments' own, as before.
    op.execute(
        "INSERT INTO marketing_timer (kind, key, contact_id, due_at, base_at, payload) "
        "SELECT 'enrolment_end', e.id::text, e.contact_id, t.due_at, t.base_at, "
        "jsonb_build_object('flow_id', e.flow_id) "
        "FROM marketing_timer t JOIN marketing_enrolment e "
        "ON e.flow_id = t.payload->>'flow_id' AND e.state = 'ACTIVE' "
        "AND e.created_at = timestamptz 'epoch' "
        "+ (t.payload->>'begun_at')::bigint * interval '1 microsecond' "
        "WHERE t.kind = 'enrolments_end' ON CONFLICT DO NOTHING"
    )
    op.execute("DELETE FROM marketing_timer WHERE contact_id IS NULL")
    op.alter_column("marketing_timer", "contact_id", nullable=False)
