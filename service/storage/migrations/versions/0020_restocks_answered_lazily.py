"""restocks answered lazily: a restock without a quantity records the range of waiting
subscriptions it answers (how many, and the last one's `created_at` and `id`) rather
than marking each of them NOTIFYING, and the flow worker notifies that range from
WAITING, a batch at a time, until nobody in it waits (`finished_at`).

Why: marking 100,000 subscriptions took 2.7 s before the first notification could
begin, and cost each subscription an update of its own (five index entries) that the
notification then made again.

A restock with a quantity still picks its subscriptions (NOTIFYING), as every restock
before this migration did: those are notified as before, so nothing is carried over
(the restocks made before are finished as ranges).

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUBSCRIPTIONS = "marketing_back_in_stock_subscription"
_RESTOCKS = "marketing_restock"


def upgrade() -> None:
    op.add_column(_RESTOCKS, sa.Column("until_created_at", sa.DateTime(timezone=True)))
    op.add_column(_RESTOCKS, sa.Column("until_id", sa.Uuid()))
    op.add_column(_RESTOCKS, sa.Column("finished_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE marketing_restock SET finished_at = created_at")
    op.create_index(
        "ix_back_in_stock_waiting",
        _SUBSCRIPTIONS,
        ["product_id", "created_at", "id"],
        postgresql_where=sa.text("state = 'WAITING'"),
    )
    op.create_index(
        "ix_restock_open",
        _RESTOCKS,
        ["created_at", "id"],
        postgresql_where=sa.text("finished_at IS NULL"),
    )


def downgrade() -> None:
    # What open ranges have yet to notify is picked by their restock, as before.
    # (The range as service/waitlists/restocks.py IN_RANGE states it: a migration
    # keeps its own SQL, whatever the code becomes.)
    op.execute(
        "UPDATE marketing_back_in_stock_subscription s SET state = 'NOTIFYING', restock_id = r.id "
        "FROM marketing_restock r WHERE r.finished_at IS NULL AND r.until_id IS NOT NULL "
        "AND s.state = 'WAITING' AND s.product_id = r.product_id "
        "AND (r.variant_id = '' OR s.variant_id IN ('', r.variant_id)) "
        "AND (s.created_at, s.id) <= (r.until_created_at, r.until_id)"
    )
    op.drop_index("ix_restock_open", table_name=_RESTOCKS)
    op.drop_index("ix_back_in_stock_waiting", table_name=_SUBSCRIPTIONS)
    op.drop_column(_RESTOCKS, "finished_at")
    op.drop_column(_RESTOCKS, "until_id")
    op.drop_column(_RESTOCKS, "until_created_at")
