"""SMS and push: provable SMS consent, the SMS suppression list, device tokens.
- marketing_consent gains the number an SMS consent was given for (`phone`) and the
  version of the consent wording the person was shown (`wording_version`): together
  with source, time and IP they make an SMS opt-in provable (TCPA/CTIA).
- marketing_sms_suppression: numbers that must get no marketing SMS, keyed by the
  SHA-256 of the E.164 number (like the email list, it outlives an erasure without
  keeping the number itself).
- marketing_push_token: each contact's devices (APNs or FCM tokens); a token belongs
  to one contact at a time.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("marketing_consent", sa.Column("phone", sa.String(16), nullable=True))
    op.add_column("marketing_consent", sa.Column("wording_version", sa.String(64), nullable=True))
    op.create_table(
        "marketing_sms_suppression",
        sa.Column("phone_sha256", sa.String(64), primary_key=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_table(
        "marketing_push_token",
        sa.Column("token", sa.String(1024), primary_key=True),
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("vendor", sa.String(16), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index(
        "ix_marketing_push_token_contact", "marketing_push_token", ["contact_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_marketing_push_token_contact", table_name="marketing_push_token")
    op.drop_table("marketing_push_token")
    op.drop_table("marketing_sms_suppression")
    op.drop_column("marketing_consent", "wording_version")
    op.drop_column("marketing_consent", "phone")
