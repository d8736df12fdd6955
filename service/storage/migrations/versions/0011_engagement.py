"""engagement: what people did with the providers' messages, as their webhooks
reported it (delivered, opened, clicked, bounced, spam complaints,
unsubscribes), one row per provider engagement id, applied once; a flow's
Klaviyo flow id (its messages' engagement counts in its metrics)

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "marketing_engagement"


def upgrade() -> None:
    op.create_table(
        _TABLE,
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("provider_type", sa.String(128), nullable=False, server_default=""),
        sa.Column("contact_id", sa.Uuid()),
        sa.Column("email_sha256", sa.String(64)),
        sa.Column("campaign_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("flow_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("message_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("url", sa.Text(), nullable=False, server_default=""),
        sa.Column("bounce_type", sa.String(16), nullable=False, server_default=""),
        sa.Column("detail", sa.String(255), nullable=False, server_default=""),
        # What it did to the person: consent withdrawn, suppressed, nothing (and why).
        sa.Column("effect", sa.String(32), nullable=False, server_default=""),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider", "external_id", name="uq_engagement_provider_id"),
    )
    # Metrics per campaign and per flow message, and a person's history.
    op.create_index("ix_engagement_campaign", _TABLE, ["campaign_id", "type", "occurred_at"])
    op.create_index("ix_engagement_flow", _TABLE, ["flow_id", "type", "occurred_at"])
    op.create_index("ix_engagement_contact", _TABLE, ["contact_id", "occurred_at"])
    op.create_index("ix_engagement_occurred", _TABLE, ["occurred_at"])
    # A person's touches before an order (attribution).
    op.create_index("ix_engagement_person", _TABLE, ["email_sha256", "occurred_at"])
    # An SMS STOP names the phone only: its contact is found by it.
    op.create_index(
        "ix_marketing_contact_phone",
        "marketing_contact",
        ["phone"],
        postgresql_where=sa.text("phone IS NOT NULL"),
    )
    op.add_column(
        "marketing_flow",
        sa.Column("klaviyo_flow_id", sa.String(128), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_column("marketing_flow", "klaviyo_flow_id")
    op.drop_index("ix_marketing_contact_phone", table_name="marketing_contact")
    op.drop_table(_TABLE)
