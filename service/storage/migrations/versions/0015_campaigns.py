"""campaigns we orchestrate (campaigns/{id}): what is sent (content, or an A/B test's
variants), to whom (a segment), when (a schedule), and where it stands; and each
recipient's decision (included, or why not) with their A/B variant, which the frequency
cap counts (an index on the people included, by time).

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = ("DRAFT", "SCHEDULED", "SENDING", "TESTING", "SENT", "CANCELLED", "FAILED")
_CHANNELS = ("EMAIL", "SMS", "PUSH")


def upgrade() -> None:
    state = postgresql.ENUM(*_STATES, name="campaign_state", create_type=False)
    channel = postgresql.ENUM(*_CHANNELS, name="campaign_channel", create_type=False)
    state.create(op.get_bind())
    channel.create(op.get_bind())
    op.create_table(
        "marketing_campaign",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("channel", channel, nullable=False),
        sa.Column("audience", sa.String(63), nullable=False),
        # {"subject", "body"}; null with an A/B test (its variants are in ab_test)
        sa.Column("content", postgresql.JSONB(), nullable=True),
        sa.Column("ab_test", postgresql.JSONB(), nullable=True),
        sa.Column("schedule", postgresql.JSONB(), nullable=True),
        sa.Column("state", state, nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("send_start_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_marketing_campaign_created", "marketing_campaign", ["created_at", "id"])
    op.create_table(
        "marketing_campaign_recipient",
        sa.Column(
            "campaign_id",
            sa.String(63),
            sa.ForeignKey("marketing_campaign.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("variant", sa.SmallInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_marketing_campaign_recipient_included",
        "marketing_campaign_recipient",
        ["contact_id", "decided_at"],
        postgresql_where=sa.text("decision = 'included'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_marketing_campaign_recipient_included", table_name="marketing_campaign_recipient"
    )
    op.drop_table("marketing_campaign_recipient")
    op.drop_index("ix_marketing_campaign_created", table_name="marketing_campaign")
    op.drop_table("marketing_campaign")
    postgresql.ENUM(name="campaign_state").drop(op.get_bind())
    postgresql.ENUM(name="campaign_channel").drop(op.get_bind())
