"""segments: dynamic and manual segments, their memberships' foreign key, and
the record of who joined or left each one and when

The built-in newsletter segment, whose memberships exist since 0001, becomes
a row like any other (manual, built in), so every membership names a segment.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "marketing_segment",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("kind", sa.Enum("DYNAMIC", "MANUAL", name="segment_kind"), nullable=False),
        # The filter tree (service/segments/filters.py, to_json); NULL for manual.
        sa.Column("filter", JSONB()),
        # What can change membership besides a contact's own row: derived from
        # the filter, so the workers find the segments to re-evaluate.
        sa.Column("relative", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("has_events", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("depends_on", sa.ARRAY(sa.String(63)), nullable=False, server_default="{}"),
        sa.Column("built_in", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        """
        INSERT INTO marketing_segment (id, display_name, description, kind, built_in,
                                       created_at, updated_at)
        VALUES ('newsletter', 'Newsletter',
                'Subscribers of the newsletter (SubscribeNewsletter, Unsubscribe).',
                'MANUAL', true, now(), now())
        """
    )
    op.create_foreign_key(
        "fk_marketing_segment_membership_segment",
        "marketing_segment_membership",
        "marketing_segment",
        ["segment"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_table(
        "marketing_segment_change",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "segment_id",
            sa.String(63),
            sa.ForeignKey("marketing_segment.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # An erased person's history goes with them.
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("joined", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_marketing_segment_change_segment", "marketing_segment_change", ["segment_id", "id"]
    )
    op.create_index(
        "ix_marketing_segment_change_contact", "marketing_segment_change", ["contact_id"]
    )
    # Event conditions count a person's events of a type in a window: one
    # person's (a probe after their change), or everyone's (a whole segment:
    # the people with events of the type in the window, from the index alone).
    op.create_index(
        "ix_marketing_event_log_key_type_time",
        "marketing_event_log",
        ["contact_key", "type", "occurred_at"],
    )
    op.create_index(
        "ix_marketing_event_log_type_time",
        "marketing_event_log",
        ["type", "occurred_at"],
        postgresql_include=["contact_key"],
    )


def downgrade() -> None:
    op.drop_index("ix_marketing_event_log_type_time", "marketing_event_log")
    op.drop_index("ix_marketing_event_log_key_type_time", "marketing_event_log")
    op.drop_table("marketing_segment_change")
    # Before 0005 only the newsletter segment existed.
    op.execute("DELETE FROM marketing_segment_membership WHERE segment <> 'newsletter'")
    op.drop_constraint("fk_marketing_segment_membership_segment", "marketing_segment_membership")
    op.drop_table("marketing_segment")
    op.execute("DROP TYPE segment_kind")
