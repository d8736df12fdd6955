"""segment pending: the contacts whose dynamic segments are to be re-evaluated

A change to a contact (its row, consent, suppression, events) records the
contact here in its own transaction; the segment refresher takes them in
batches and evaluates every dynamic segment for a batch at once.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marketing_segment_pending",
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("marketing_segment_pending")
