"""contact syncs: the full sync of every contact, its checkpoint, its chunk
results and the people the provider refused

One sync runs at a time, which a partial unique index holds the database to
as well (two service replicas starting one at the same moment: one wins).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = ("RUNNING", "SUCCEEDED", "FAILED", "CANCELLED")


def _time(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _count(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "marketing_contact_sync",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("request_id", sa.Uuid(), unique=True),
        sa.Column("state", sa.Enum(*_STATES, name="contact_sync_state"), nullable=False),
        # The last contact id published (keyset order); NULL before the first chunk.
        sa.Column("checkpoint", sa.Uuid()),
        # The chunk being published: its sequence and the last contact id it
        # covers, written before it goes out so a resumed driver rebuilds the
        # very same chunk (same range, same Nats-Msg-Id).
        sa.Column("pending_sequence", sa.BigInteger()),
        sa.Column("pending_upper", sa.Uuid()),
        sa.Column("reached_end", sa.Boolean(), nullable=False, server_default=sa.false()),
        _count("total_contacts"),
        _count("published_contacts"),
        _count("published_chunks"),
        _count("reported_chunks"),
        _count("given_up_chunks"),
        _count("imported_contacts"),
        _count("failed_contacts"),
        _count("provider_jobs"),
        sa.Column("last_provider_job", sa.Text()),
        sa.Column("error", sa.Text()),
        _time("created_at"),
        _time("updated_at"),
        _time("cancel_requested_at", nullable=True),
        _time("ended_at", nullable=True),
    )
    op.create_index(
        "uq_marketing_contact_sync_running",
        "marketing_contact_sync",
        ["state"],
        unique=True,
        postgresql_where=sa.text("state = 'RUNNING'"),
    )
    op.create_index(
        "ix_marketing_contact_sync_created", "marketing_contact_sync", ["created_at", "id"]
    )
    op.create_table(
        "marketing_contact_sync_chunk",
        sa.Column(
            "sync_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact_sync.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sequence", sa.BigInteger(), primary_key=True),
        # Written when the chunk is published (a result may come first, after
        # a crash between publishing and the checkpoint).
        sa.Column("contacts", sa.Integer()),
        _time("published_at", nullable=True),
        # Written once, by the first delivery of the chunk's result.
        sa.Column("imported", sa.Integer()),
        sa.Column("failed", sa.Integer()),
        sa.Column("error", sa.Text()),
        _time("reported_at", nullable=True),
    )
    op.create_table(
        "marketing_contact_sync_error",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "sync_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact_sync.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # Personal data: goes with the contact when they are erased.
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _time("created_at"),
    )
    op.create_index(
        "ix_marketing_contact_sync_error_sync", "marketing_contact_sync_error", ["sync_id", "id"]
    )
    op.create_index(
        "ix_marketing_contact_sync_error_contact", "marketing_contact_sync_error", ["contact_id"]
    )


def downgrade() -> None:
    op.drop_table("marketing_contact_sync_error")
    op.drop_table("marketing_contact_sync_chunk")
    op.drop_table("marketing_contact_sync")
    op.execute("DROP TYPE IF EXISTS contact_sync_state")
