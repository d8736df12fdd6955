"""back in stock: waitlist subscriptions per product and variant with their
fate (waiting, notifying, notified, skipped, removed), and restocks

The subscription table of 0001 was never written to: its columns are
replaced, not carried over.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "marketing_back_in_stock_subscription"


def upgrade() -> None:
    op.drop_index("uq_back_in_stock_contact_product", table_name=_TABLE)
    op.drop_index("ix_back_in_stock_product_notified", table_name=_TABLE)
    op.drop_column(_TABLE, "notified")
    op.drop_column(_TABLE, "notified_at")
    op.add_column(
        _TABLE, sa.Column("variant_id", sa.String(128), nullable=False, server_default="")
    )
    op.add_column(
        _TABLE, sa.Column("state", sa.String(12), nullable=False, server_default="WAITING")
    )
    op.add_column(_TABLE, sa.Column("reason", sa.String(64)))
    op.add_column(_TABLE, sa.Column("source", sa.String(100), nullable=False, server_default=""))
    op.add_column(_TABLE, sa.Column("restock_id", sa.Uuid()))
    op.add_column(_TABLE, sa.Column("enrolment_id", sa.Uuid()))
    op.add_column(_TABLE, sa.Column("ended_at", sa.DateTime(timezone=True)))
    op.create_index(
        "uq_back_in_stock_waiting",
        _TABLE,
        ["contact_id", "product_id", "variant_id"],
        unique=True,
        postgresql_where=sa.text("state IN ('WAITING', 'NOTIFYING')"),
    )
    op.create_index(
        "ix_back_in_stock_product", _TABLE, ["product_id", "variant_id", "created_at", "id"]
    )
    op.create_index("ix_back_in_stock_contact", _TABLE, ["contact_id", "created_at", "id"])
    op.create_index(
        "ix_back_in_stock_notifying",
        _TABLE,
        ["created_at", "id"],
        postgresql_where=sa.text("state = 'NOTIFYING'"),
    )
    op.create_table(
        "marketing_restock",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("product_id", sa.String(128), nullable=False),
        sa.Column("variant_id", sa.String(128), nullable=False, server_default=""),
        sa.Column("quantity", sa.BigInteger()),
        sa.Column("product", JSONB(), nullable=False, server_default="{}"),
        sa.Column("picked", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("request_id", sa.Uuid(), unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("marketing_restock")
    for index in (
        "ix_back_in_stock_notifying",
        "ix_back_in_stock_contact",
        "ix_back_in_stock_product",
        "uq_back_in_stock_waiting",
    ):
        op.drop_index(index, table_name=_TABLE)
    for column in ("ended_at", "enrolment_id", "restock_id", "source", "reason", "state"):
        op.drop_column(_TABLE, column)
    op.drop_column(_TABLE, "variant_id")
    op.add_column(
        _TABLE, sa.Column("notified", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(_TABLE, sa.Column("notified_at", sa.DateTime(timezone=True)))
    op.create_index(
        "uq_back_in_stock_contact_product", _TABLE, ["contact_id", "product_id"], unique=True
    )
    op.create_index("ix_back_in_stock_product_notified", _TABLE, ["product_id", "notified"])
