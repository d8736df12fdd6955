"""contact sync consent pages: a sync's consent goes out ahead of its imports, read by a
cursor of its own (consent_checkpoint) into pages published straight to the consent stage,
so that the provider's consent endpoints get their calls early in the sync instead of
evenly behind the imports (service/workers/sync_driver.py says why)

A page shares the sync's sequence numbers with the import chunks (one pending slot, one
Nats-Msg-Id space); `pending_consent` and the chunk's `consent` say which kind a sequence
is. Syncs that existed before keep consent behind imports (consent_pages false); new ones
send pages.

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

_SYNC = "marketing_contact_sync"
_CHUNK = "marketing_contact_sync_chunk"


def _flag(name: str) -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")


def upgrade() -> None:
    # Existing rows: false (consent behind imports, as they began); new rows: true.
    op.add_column(_SYNC, _flag("consent_pages"))
    op.alter_column(_SYNC, "consent_pages", server_default=sa.true())
    op.add_column(_SYNC, sa.Column("consent_checkpoint", sa.Uuid()))
    op.add_column(_SYNC, _flag("consent_reached_end"))
    op.add_column(_SYNC, _flag("pending_consent"))
    op.add_column(_SYNC, _count("consent_published_chunks"))
    op.add_column(_SYNC, _count("consent_reported_chunks"))
    op.add_column(_SYNC, _count("consent_failed_contacts"))
    op.add_column(_CHUNK, _flag("consent"))


def downgrade() -> None:
    op.drop_column(_CHUNK, "consent")
    for column in (
        "consent_failed_contacts",
        "consent_reported_chunks",
        "consent_published_chunks",
        "pending_consent",
        "consent_reached_end",
        "consent_checkpoint",
        "consent_pages",
    ):
        op.drop_column(_SYNC, column)
