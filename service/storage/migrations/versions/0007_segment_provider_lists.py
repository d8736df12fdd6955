"""segment provider lists: a segment's email audience kept in a provider list

A segment may be linked to a provider list (`list_linked`, the provider's
`list_id` once known, `list_name` for a list found or created by name,
`list_link_id` naming the link, `list_synced_at` when the provider last
accepted a change); one segment per list. `marketing_segment_list_member`
holds, per linked segment and contact, whether the person was last sent into
the list or out of it, and the outbox row carrying that decision until the
provider's result comes back (the segment's pending changes).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "marketing_segment",
        sa.Column("list_linked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("marketing_segment", sa.Column("list_id", sa.String(64), nullable=True))
    # A list found or created by name: the name, fixed when linked.
    op.add_column("marketing_segment", sa.Column("list_name", sa.String(200), nullable=True))
    # Each link's own id: results and found lists of an earlier link are not this one's.
    op.add_column("marketing_segment", sa.Column("list_link_id", sa.Uuid(), nullable=True))
    op.add_column(
        "marketing_segment",
        sa.Column("list_synced_at", sa.DateTime(timezone=True), nullable=True),
    )
    # One segment per list: two would take people out of each other's list.
    op.create_index(
        "uq_marketing_segment_list_id",
        "marketing_segment",
        ["list_id"],
        unique=True,
        postgresql_where=sa.text("list_linked AND list_id IS NOT NULL"),
    )
    op.create_table(
        "marketing_segment_list_member",
        sa.Column(
            "segment_id",
            sa.String(63),
            sa.ForeignKey("marketing_segment.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("in_list", sa.Boolean(), nullable=False),
        sa.Column("outbox_id", sa.Uuid(), nullable=True),
    )
    op.create_index(
        "ix_marketing_segment_list_member_contact",
        "marketing_segment_list_member",
        ["contact_id"],
    )
    op.create_index(
        "ix_marketing_segment_list_member_outbox",
        "marketing_segment_list_member",
        ["outbox_id"],
        postgresql_where=sa.text("outbox_id IS NOT NULL"),
    )
    # A segment's pending changes, counted for GetSegment and ListSegments.
    op.create_index(
        "ix_marketing_segment_list_member_pending",
        "marketing_segment_list_member",
        ["segment_id"],
        postgresql_where=sa.text("outbox_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("marketing_segment_list_member")
    op.drop_index("uq_marketing_segment_list_id", table_name="marketing_segment")
    op.drop_column("marketing_segment", "list_link_id")
    op.drop_column("marketing_segment", "list_name")
    op.drop_column("marketing_segment", "list_synced_at")
    op.drop_column("marketing_segment", "list_id")
    op.drop_column("marketing_segment", "list_linked")
