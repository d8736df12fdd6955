"""campaign sends: when a scheduled campaign falls due (`due_at`), its parts (one per
A/B variant and send instant, and the remainder that gets the winner), the pages of each
part's recipients handed to the provider (chunks, so that a driver killed mid-send
publishes the same pages again), each recipient's part and what the provider's import made
of them, and the A/B decision.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "marketing_campaign", sa.Column("due_at", sa.DateTime(timezone=True), nullable=True)
    )
    # When the test parts were sent: the A/B window counts from here.
    op.add_column(
        "marketing_campaign", sa.Column("test_sent_at", sa.DateTime(timezone=True), nullable=True)
    )
    # {"winner", "manual", "significant", "reason", "decided_at"}
    op.add_column("marketing_campaign", sa.Column("ab_decision", postgresql.JSONB(), nullable=True))
    op.create_index(
        "ix_marketing_campaign_due",
        "marketing_campaign",
        ["due_at"],
        postgresql_where=sa.text("state = 'SCHEDULED'"),
    )
    op.add_column(
        "marketing_campaign_recipient", sa.Column("part", sa.SmallInteger(), nullable=True)
    )
    # The provider's import refused them (its reason): they got nothing.
    op.add_column("marketing_campaign_recipient", sa.Column("failure", sa.Text(), nullable=True))
    op.create_index(
        "ix_marketing_campaign_recipient_part",
        "marketing_campaign_recipient",
        ["campaign_id", "part", "contact_id"],
        postgresql_where=sa.text("part IS NOT NULL"),
    )
    op.create_table(
        "marketing_campaign_part",
        sa.Column(
            "campaign_id",
            sa.String(63),
            sa.ForeignKey("marketing_campaign.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("part", sa.SmallInteger(), primary_key=True),
        # The A/B variant sent (the winner, for the remainder); null without a test.
        sa.Column("variant", sa.SmallInteger(), nullable=True),
        sa.Column("remainder", sa.Boolean(), nullable=False, server_default=sa.false()),
        # null: at once
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=True),
        # FILLING (pages being imported into its list), SENDING (the provider campaign
        # asked for), SENT, FAILED
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        # the last contact id of the last page written down; null before the first
        sa.Column("published_through", sa.Uuid(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("pages_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("all_paged", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("imported", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("refused", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("list_id", sa.Text(), nullable=True),
        sa.Column("provider_campaign_id", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        # sends that failed in a way that may pass: tried again a few times
        sa.Column("send_failures", sa.SmallInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "marketing_campaign_page",
        sa.Column("campaign_id", sa.String(63), primary_key=True),
        sa.Column("part", sa.SmallInteger(), primary_key=True),
        sa.Column("sequence", sa.Integer(), primary_key=True),
        # the page's recipients: the part's with contact ids in (after, through]
        sa.Column("after", sa.Uuid(), nullable=True),
        sa.Column("through", sa.Uuid(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        # imports that failed in a way that may pass: tried again a few times
        sa.Column("failures", sa.SmallInteger(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(
            ["campaign_id", "part"],
            ["marketing_campaign_part.campaign_id", "marketing_campaign_part.part"],
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("marketing_campaign_page")
    op.drop_table("marketing_campaign_part")
    op.drop_index("ix_marketing_campaign_recipient_part", table_name="marketing_campaign_recipient")
    op.drop_column("marketing_campaign_recipient", "failure")
    op.drop_column("marketing_campaign_recipient", "part")
    op.drop_index("ix_marketing_campaign_due", table_name="marketing_campaign")
    op.drop_column("marketing_campaign", "ab_decision")
    op.drop_column("marketing_campaign", "test_sent_at")
    op.drop_column("marketing_campaign", "due_at")
