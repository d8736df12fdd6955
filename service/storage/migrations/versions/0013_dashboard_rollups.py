"""dashboard rollups: what GetDashboardMetrics reads instead of scanning a million
contacts and every order on each call.
- marketing_contact_day: contacts per UTC day of creation, kept by statement triggers on
  marketing_contact (insert adds, delete takes away), over up to 32 shard rows a day chosen by
  backend, so that concurrent writers (different connections) seldom wait on one row;
  first/last creation time bound each day's rows, so a range that cuts a day is counted
  from the contacts table only when it has to.
- marketing_attribution_pending: people whose orders must be attributed again, queued by
  statement triggers when an order is logged or a person opens or clicks a message; the
  attribution worker (service/reports/attribution.py) drains it.
- marketing_conversion: each attributed order, with the message it is attributed to.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Concurrent writers are different backends: by backend, they seldom share a row.
CONTACT_DAY_SHARDS = 32

_CONTACT_DAY_FUNCTIONS = (
    f"""
CREATE FUNCTION marketing_contact_day_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO marketing_contact_day AS d (day, shard, contacts, first_created, last_created)
    SELECT (created_at AT TIME ZONE 'UTC')::date, pg_backend_pid() % {CONTACT_DAY_SHARDS},
           count(*), min(created_at), max(created_at)
    FROM added GROUP BY 1
    ON CONFLICT (day, shard) DO UPDATE SET
        contacts = d.contacts + excluded.contacts,
        first_created = least(d.first_created, excluded.first_created),
        last_created = greatest(d.last_created, excluded.last_created);
    RETURN NULL;
END;
$$
""",
    f"""
CREATE FUNCTION marketing_contact_day_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The bounds stay as they were: still bounds of the rows left.
    INSERT INTO marketing_contact_day AS d (day, shard, contacts, first_created, last_created)
    SELECT (created_at AT TIME ZONE 'UTC')::date, pg_backend_pid() % {CONTACT_DAY_SHARDS},
           -count(*), min(created_at), max(created_at)
    FROM removed GROUP BY 1
    ON CONFLICT (day, shard) DO UPDATE SET contacts = d.contacts + excluded.contacts;
    RETURN NULL;
END;
$$
""",
)

_PENDING_FUNCTIONS = (
    """
CREATE FUNCTION marketing_attribution_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO marketing_attribution_pending (contact_key)
    SELECT DISTINCT contact_key FROM added WHERE type = 'placed_order'
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$
""",
    """
CREATE FUNCTION marketing_attribution_touches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO marketing_attribution_pending (contact_key)
    SELECT DISTINCT email_sha256 FROM added
    WHERE type IN ('opened', 'clicked') AND email_sha256 IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$
""",
)

_TRIGGERS = (
    (
        "marketing_contact_day_added",
        "INSERT",
        "marketing_contact",
        "NEW TABLE AS added",
        "marketing_contact_day_add",
    ),
    (
        "marketing_contact_day_removed",
        "DELETE",
        "marketing_contact",
        "OLD TABLE AS removed",
        "marketing_contact_day_remove",
    ),
    (
        "marketing_attribution_orders",
        "INSERT",
        "marketing_event_log",
        "NEW TABLE AS added",
        "marketing_attribution_orders",
    ),
    (
        "marketing_attribution_touches",
        "INSERT",
        "marketing_engagement",
        "NEW TABLE AS added",
        "marketing_attribution_touches",
    ),
)


def upgrade() -> None:
    op.create_table(
        "marketing_contact_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("contacts", sa.BigInteger(), nullable=False),
        sa.Column("first_created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "shard"),
    )
    op.create_table(
        "marketing_attribution_pending",
        sa.Column("contact_key", sa.String(64), primary_key=True),
    )
    op.create_table(
        "marketing_conversion",
        sa.Column("order_event_id", sa.String(128), primary_key=True),
        sa.Column("contact_key", sa.String(64), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("engagement_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("campaign_id", sa.String(128), nullable=False),
        sa.Column("flow_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_nanos", sa.Numeric(), nullable=False),
    )
    op.create_index("ix_conversion_person", "marketing_conversion", ["contact_key"])
    op.create_index("ix_conversion_ordered", "marketing_conversion", ["ordered_at"])
    op.create_index("ix_conversion_campaign", "marketing_conversion", ["campaign_id", "ordered_at"])
    op.create_index(
        "ix_conversion_flow", "marketing_conversion", ["provider", "flow_id", "ordered_at"]
    )
    for function in (*_CONTACT_DAY_FUNCTIONS, *_PENDING_FUNCTIONS):
        op.execute(function)  # one statement each: asyncpg prepares what it runs
    for name, action, table, transition, function in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} AFTER {action} ON {table} REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    # What exists already: the contacts counted, every person with orders or
    # touches queued once.
    op.execute(
        "INSERT INTO marketing_contact_day (day, shard, contacts, first_created, last_created) "
        "SELECT (created_at AT TIME ZONE 'UTC')::date, 0, count(*), min(created_at), "
        "max(created_at) FROM marketing_contact GROUP BY 1"
    )
    op.execute(
        "INSERT INTO marketing_attribution_pending (contact_key) "
        "SELECT DISTINCT email_sha256 FROM marketing_engagement "
        "WHERE type IN ('opened', 'clicked') AND email_sha256 IS NOT NULL"
    )


def downgrade() -> None:
    for name, _, table, _, function in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table("marketing_conversion")
    op.drop_table("marketing_attribution_pending")
    op.drop_table("marketing_contact_day")
