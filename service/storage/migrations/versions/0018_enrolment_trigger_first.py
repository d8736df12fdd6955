"""enrolment trigger first: `uq_marketing_enrolment_trigger` leads with `trigger_ref`
(was `flow_id`), so that "was this trigger decided for this flow?" is one probe by the
trigger, whatever PostgreSQL's statistics say of the flow.

Why: a flow new to the table's statistics (the first large restock, a new flow) is
estimated at one row, and the planner then probed every trigger through
`ix_marketing_enrolment_flow_created` (the flow's enrolments in creation order,
filtered by trigger): each batch of 2,000 walked every enrolment the flow had so far,
and a 100,000-person restock slowed down as it went (a 134 s statement, measured).
The probes now name the flow only as a filter (`service/flows/enrolments.py`).

The index is rebuilt in the migration's transaction, which holds the table's lock
meanwhile: enrolments wait for the build (seconds per million rows). Run it when flow
decisions may pause that long.

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "uq_marketing_enrolment_trigger"


def upgrade() -> None:
    op.drop_index(_NAME, table_name="marketing_enrolment")
    op.create_index(_NAME, "marketing_enrolment", ["trigger_ref", "flow_id"], unique=True)


def downgrade() -> None:
    op.drop_index(_NAME, table_name="marketing_enrolment")
    op.create_index(_NAME, "marketing_enrolment", ["flow_id", "trigger_ref"], unique=True)
