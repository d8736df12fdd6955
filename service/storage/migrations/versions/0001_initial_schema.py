"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 08:05:36.732613
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_FUNCTION = """
CREATE FUNCTION marketing_reject_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "marketing_campaign_cache",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "type", sa.Enum("EMAIL", "SMS", "PUSH", "FLOW", name="campaign_type"), nullable=False
        ),
        sa.Column(
            "status",
            sa.Enum(
                "DRAFT",
                "SCHEDULED",
                "SENDING",
                "SENT",
                "PAUSED",
                "ARCHIVED",
                name="campaign_status",
            ),
            nullable=False,
        ),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "last_fetched_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    op.create_index(
        "ix_marketing_campaign_cache_type_status",
        "marketing_campaign_cache",
        ["type", "status"],
        unique=False,
    )
    op.create_table(
        "marketing_contact",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("first_name", sa.String(length=255), nullable=True),
        sa.Column("last_name", sa.String(length=255), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("registration_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("loyalty_tier", sa.String(length=64), nullable=True),
        sa.Column("lifetime_value", sa.Numeric(precision=20, scale=9), nullable=True),
        sa.Column("lifetime_value_currency", sa.String(length=3), nullable=True),
        sa.Column("order_count", sa.Integer(), nullable=True),
        sa.Column("last_purchase_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("custom_properties", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("email_opt_in", sa.Boolean(), nullable=False),
        sa.Column("sms_opt_in", sa.Boolean(), nullable=False),
        sa.Column("push_opt_in", sa.Boolean(), nullable=False),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("external_id"),
        sa.UniqueConstraint("user_id"),
    )
    op.create_index(
        "ix_marketing_contact_created", "marketing_contact", ["created_at", "id"], unique=False
    )
    op.create_table(
        "marketing_erasure_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("email_sha256", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_marketing_erasure_log_email_sha256"),
        "marketing_erasure_log",
        ["email_sha256"],
        unique=False,
    )
    op.create_table(
        "marketing_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("contact_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            sa.Enum("PENDING", "IN_FLIGHT", "COMPLETED", "FAILED", name="outbox_status"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seq"),
    )
    op.create_index(
        "ix_marketing_outbox_contact_key", "marketing_outbox", ["contact_key", "seq"], unique=False
    )
    op.create_index(
        "ix_marketing_outbox_status_seq", "marketing_outbox", ["status", "seq"], unique=False
    )
    op.create_table(
        "marketing_suppression",
        sa.Column("email_sha256", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("email_sha256"),
    )
    op.create_table(
        "marketing_back_in_stock_subscription",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("notified", sa.Boolean(), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["contact_id"], ["marketing_contact.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_back_in_stock_product_notified",
        "marketing_back_in_stock_subscription",
        ["product_id", "notified"],
        unique=False,
    )
    op.create_index(
        "uq_back_in_stock_contact_product",
        "marketing_back_in_stock_subscription",
        ["contact_id", "product_id"],
        unique=True,
    )
    op.create_table(
        "marketing_consent",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column(
            "type",
            sa.Enum("EMAIL", "SMS", "PUSH", "MARKETING", "ANALYTICS", name="consent_type"),
            nullable=False,
        ),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=1024), nullable=True),
        sa.Column("consent_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["marketing_contact.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index(
        "ix_marketing_consent_contact_type",
        "marketing_consent",
        ["contact_id", "type"],
        unique=False,
    )
    op.create_index(
        "ix_marketing_consent_history",
        "marketing_consent",
        ["contact_id", "consent_time", "id"],
        unique=False,
    )
    op.create_index(
        "ix_marketing_consent_time", "marketing_consent", ["consent_time"], unique=False
    )
    op.create_table(
        "marketing_event_log",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=True),
        sa.Column("contact_key", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column(
            "status",
            sa.Enum("PENDING", "PROCESSING", "COMPLETED", "FAILED", name="event_status"),
            nullable=False,
        ),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["contact_id"], ["marketing_contact.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_marketing_event_log_contact", "marketing_event_log", ["contact_id"], unique=False
    )
    op.create_index(
        "ix_marketing_event_log_contact_key", "marketing_event_log", ["contact_key"], unique=False
    )
    op.create_index(
        "ix_marketing_event_log_status_retry",
        "marketing_event_log",
        ["status", "next_retry_at"],
        unique=False,
    )
    op.create_index("ix_marketing_event_log_type", "marketing_event_log", ["type"], unique=False)
    op.create_table(
        "marketing_segment_membership",
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=False),
        sa.Column(
            "added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(["contact_id"], ["marketing_contact.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id", "segment"),
    )
    op.create_index(
        "ix_marketing_segment_membership_segment",
        "marketing_segment_membership",
        ["segment"],
        unique=False,
    )

    # Consent records are an audit trail: edits are refused by the database
    # itself, not only by our code. Deletion stays possible for erasure.
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER marketing_consent_append_only BEFORE UPDATE ON marketing_consent "
        "FOR EACH ROW EXECUTE FUNCTION marketing_reject_update()"
    )


def downgrade() -> None:
    op.drop_index(
        "ix_marketing_segment_membership_segment", table_name="marketing_segment_membership"
    )
    op.drop_table("marketing_segment_membership")
    op.drop_index("ix_marketing_event_log_type", table_name="marketing_event_log")
    op.drop_index("ix_marketing_event_log_status_retry", table_name="marketing_event_log")
    op.drop_index("ix_marketing_event_log_contact_key", table_name="marketing_event_log")
    op.drop_index("ix_marketing_event_log_contact", table_name="marketing_event_log")
    op.drop_table("marketing_event_log")
    op.drop_index("ix_marketing_consent_time", table_name="marketing_consent")
    op.drop_index("ix_marketing_consent_history", table_name="marketing_consent")
    op.drop_index("ix_marketing_consent_contact_type", table_name="marketing_consent")
    op.drop_table("marketing_consent")
    op.drop_index(
        "uq_back_in_stock_contact_product", table_name="marketing_back_in_stock_subscription"
    )
    op.drop_index(
        "ix_back_in_stock_product_notified", table_name="marketing_back_in_stock_subscription"
    )
    op.drop_table("marketing_back_in_stock_subscription")
    op.drop_table("marketing_suppression")
    op.drop_index("ix_marketing_outbox_status_seq", table_name="marketing_outbox")
    op.drop_index("ix_marketing_outbox_contact_key", table_name="marketing_outbox")
    op.drop_table("marketing_outbox")
    op.drop_index(op.f("ix_marketing_erasure_log_email_sha256"), table_name="marketing_erasure_log")
    op.drop_table("marketing_erasure_log")
    op.drop_index("ix_marketing_contact_created", table_name="marketing_contact")
    op.drop_table("marketing_contact")
    op.drop_index("ix_marketing_campaign_cache_type_status", table_name="marketing_campaign_cache")
    op.drop_table("marketing_campaign_cache")
    op.execute("DROP FUNCTION IF EXISTS marketing_reject_update()")
    for enum_name in (
        "consent_type",
        "event_status",
        "outbox_status",
        "campaign_type",
        "campaign_status",
    ):
        op.execute(f"DROP TYPE IF EXISTS {enum_name}")
