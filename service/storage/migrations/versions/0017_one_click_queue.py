"""one-click queue: `marketing_one_click`, the one-click unsubscribes (RFC 8058) the
preference page answered and the one-click worker has not yet applied; one per contact,
keyed by the address's SHA-256 too (no foreign key: an erasure meanwhile leaves it, and
the worker still suppresses the address).

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marketing_one_click",
        sa.Column("contact_id", sa.Uuid(), primary_key=True),
        sa.Column("email_sha256", sa.String(64), nullable=False),
        # When the person clicked: their decision's time, and the worker's order.
        sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Every consent write on an address first applies the clicks queued for it.
    op.create_index("ix_marketing_one_click_email_sha256", "marketing_one_click", ["email_sha256"])
    op.create_index("ix_marketing_one_click_clicked_at", "marketing_one_click", ["clicked_at"])


def downgrade() -> None:
    op.drop_table("marketing_one_click")
