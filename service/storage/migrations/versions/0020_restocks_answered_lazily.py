"""restocks answered lazily: a restock records the range of waiting subscriptions it
answers (the oldest, up to its quantity: the last one's `created_at` and `id`) rather
than marking each of them NOTIFYING, and the flow worker notifies that range from
WAITING, a batch at a time, until none is left (`finished_at`).

Why: marking 100,000 subscriptions took 2.7 s before the first notification could
begin, and cost each subscription an update of its own (five index entries) that the
notification then made again. A person who leaves the waitlist, or buys the product,
before their batch is no longer notified.

Restocks still notifying are carried over: their NOTIFYING subscriptions are WAITING
again, within the restock's range (they were the oldest waiting when it was made).

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
    op.execute(
        "UPDATE marketing_restock r SET until_created_at = last.created_at, until_id = last.id "
        "FROM (SELECT DISTINCT ON (restock_id) restock_id, created_at, id "
        "FROM marketing_back_in_stock_subscription WHERE state = 'NOTIFYING' "
        "ORDER BY restock_id, created_at DESC, id DESC) AS last WHERE r.id = last.restock_id"
    )
    op.execute(
        "UPDATE marketing_back_in_stock_subscription SET state = 'WAITING', restock_id = NULL "
        "WHERE state = 'NOTIFYING'"
    )
    op.execute("UPDATE marketing_restock SET finished_at = created_at WHERE until_id IS NULL")
    op.drop_index("ix_back_in_stock_notifying", table_name=_SUBSCRIPTIONS)
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
    op.drop_index("ix_restock_open", table_name=_RESTOCKS)
    op.drop_index("ix_back_in_stock_waiting", table_name=_SUBSCRIPTIONS)
    op.create_index(
        "ix_back_in_stock_notifying",
        _SUBSCRIPTIONS,
        ["created_at", "id"],
        postgresql_where=sa.text("state = 'NOTIFYING'"),
    )
    # What open restocks have yet to notify is theirs again, as NOTIFYING.
    op.execute(
        "UPDATE marketing_back_in_stock_subscription s SET state = 'NOTIFYING', restock_id = r.id "
        "FROM marketing_restock r WHERE r.finished_at IS NULL AND s.state = 'WAITING' "
        "AND s.product_id = r.product_id "
        "AND (r.variant_id = '' OR s.variant_id IN ('', r.variant_id)) "
        "AND (s.created_at, s.id) <= (r.until_created_at, r.until_id)"
    )
    op.drop_column(_RESTOCKS, "finished_at")
    op.drop_column(_RESTOCKS, "until_id")
    op.drop_column(_RESTOCKS, "until_created_at")
