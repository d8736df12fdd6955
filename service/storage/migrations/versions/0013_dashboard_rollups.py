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
- marketing_engagement_reach and marketing_engagement_figures: each person counted once per
  figure (sent, delivered, opened, clicked, bounced, unsubscribed) of each campaign, flow and
  flow message, and the counts, kept by a statement trigger on marketing_engagement (8 shard
  rows a scope, by backend), so that a campaign's unique opens are read, not counted.

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
    FROM added GROUP BY 1 ORDER BY 1
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
    FROM removed GROUP BY 1 ORDER BY 1
    ON CONFLICT (day, shard) DO UPDATE SET contacts = d.contacts + excluded.contacts;
    RETURN NULL;
END;
$$
""",
)

# Every order or touch adds an entry, even for a person queued already: an
# entry is visible to the worker only once its transaction has committed, so
# the pass it causes sees the order or touch. (One entry per person, kept with
# ON CONFLICT DO NOTHING, let a worker take the person between an order's
# insert and its commit, and nothing queued them again; DO UPDATE closed that
# but made writers wait on the worker's claims and rewrite queued rows.)
# Writers lock nothing and wait for nothing here.
_PENDING_FUNCTIONS = (
    """
CREATE FUNCTION marketing_attribution_orders() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO marketing_attribution_pending (contact_key)
    SELECT DISTINCT contact_key FROM added WHERE type = 'placed_order';
    RETURN NULL;
END;
$$
""",
    """
CREATE FUNCTION marketing_attribution_touches() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO marketing_attribution_pending (contact_key)
    SELECT DISTINCT email_sha256 FROM added
    WHERE type IN ('opened', 'clicked') AND email_sha256 IS NOT NULL;
    RETURN NULL;
END;
$$
""",
)

# Which figures an engagement of a type counts in (people, unique per figure).
_FIGURES_OF_TYPE = """
CREATE FUNCTION marketing_figures_of(engagement_type text) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
SELECT CASE engagement_type
    WHEN 'sent' THEN ARRAY['sent']
    WHEN 'delivered' THEN ARRAY['sent', 'delivered']
    WHEN 'bounced' THEN ARRAY['sent', 'bounced']
    WHEN 'opened' THEN ARRAY['opened']
    WHEN 'clicked' THEN ARRAY['clicked']
    WHEN 'unsubscribed' THEN ARRAY['unsubscribed']
    WHEN 'spam_complaint' THEN ARRAY['unsubscribed']
    ELSE ARRAY[]::text[] END
$$
"""
FIGURE_SHARDS = 8
# The scopes an engagement counts in: its campaign, its flow, its flow's message.
_SCOPED = """
SELECT s.scope, a.provider, s.scope_id, s.message_id, a.type,
       coalesce(a.email_sha256, 'x:' || a.external_id) AS person, a.occurred_at
FROM {source} a
CROSS JOIN LATERAL (VALUES ('campaign', a.campaign_id, ''), ('flow', a.flow_id, ''),
                           ('flow_message', a.flow_id, a.message_id)) s(scope, scope_id, message_id)
WHERE s.scope_id <> '' AND (s.scope <> 'flow_message' OR s.message_id <> '')
"""
_FIGURE_NAMES = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed")
_COUNT_EACH = ", ".join(f"count(*) FILTER (WHERE figure = '{n}') AS {n}" for n in _FIGURE_NAMES)
_COUNT_ENGAGEMENT = f"""
CREATE FUNCTION marketing_engagement_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH scoped AS ({_SCOPED.format(source="added")}),
    reached AS (
        INSERT INTO marketing_engagement_reach (person, scope, provider, scope_id, message_id,
                                                figure)
        SELECT DISTINCT person, scope, provider, scope_id, message_id, f.figure
        FROM scoped, unnest(marketing_figures_of(type)) f(figure)
        ORDER BY 1, 2, 3, 4, 5, 6
        ON CONFLICT DO NOTHING
        RETURNING scope, provider, scope_id, message_id, figure
    ),
    counted AS (
        SELECT scope, provider, scope_id, message_id,
               {_COUNT_EACH}
        FROM reached GROUP BY 1, 2, 3, 4
    ),
    spans AS (
        SELECT scope, provider, scope_id, message_id,
               min(occurred_at) AS first_at, max(occurred_at) AS last_at
        FROM scoped GROUP BY 1, 2, 3, 4
    )
    INSERT INTO marketing_engagement_figures AS f (scope, provider, scope_id, message_id, shard,
        {", ".join(_FIGURE_NAMES)}, first_at, last_at)
    SELECT s.scope, s.provider, s.scope_id, s.message_id, pg_backend_pid() % {FIGURE_SHARDS},
           {", ".join(f"coalesce(c.{n}, 0)" for n in _FIGURE_NAMES)}, s.first_at, s.last_at
    FROM spans s LEFT JOIN counted c USING (scope, provider, scope_id, message_id)
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (scope, provider, scope_id, message_id, shard) DO UPDATE SET
        {", ".join(f"{n} = f.{n} + excluded.{n}" for n in _FIGURE_NAMES)},
        first_at = least(f.first_at, excluded.first_at),
        last_at = greatest(f.last_at, excluded.last_at)
    -- Repeats and people already counted change nothing: no new row version.
    WHERE {" + ".join(f"excluded.{n}" for n in _FIGURE_NAMES)} > 0
       OR excluded.first_at < f.first_at OR excluded.last_at > f.last_at;
    RETURN NULL;
END;
$$
"""
_BACKFILL_REACH = f"""
INSERT INTO marketing_engagement_reach (scope, provider, scope_id, message_id, figure, person)
SELECT DISTINCT scope, provider, scope_id, message_id, f.figure, person
FROM ({_SCOPED.format(source="marketing_engagement")}) scoped,
     unnest(marketing_figures_of(type)) f(figure)
"""
_BACKFILL_FIGURES = f"""
INSERT INTO marketing_engagement_figures (scope, provider, scope_id, message_id, shard,
    {", ".join(_FIGURE_NAMES)}, first_at, last_at)
SELECT s.scope, s.provider, s.scope_id, s.message_id, 0,
       {", ".join(f"coalesce(c.{n}, 0)" for n in _FIGURE_NAMES)}, s.first_at, s.last_at
FROM (SELECT scope, provider, scope_id, message_id, min(occurred_at) AS first_at,
             max(occurred_at) AS last_at
      FROM ({_SCOPED.format(source="marketing_engagement")}) scoped GROUP BY 1, 2, 3, 4) s
LEFT JOIN (SELECT scope, provider, scope_id, message_id,
                  {_COUNT_EACH}
           FROM marketing_engagement_reach GROUP BY 1, 2, 3, 4) c
USING (scope, provider, scope_id, message_id)
"""

_CREATED_AT_FIXED = """
CREATE FUNCTION marketing_reject_created_at_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'marketing_contact.created_at never changes (marketing_contact_day counts it)'
        USING ERRCODE = 'restrict_violation';
END;
$$
"""

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
        "marketing_engagement_counted",
        "INSERT",
        "marketing_engagement",
        "NEW TABLE AS added",
        "marketing_engagement_count",
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
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("contact_key", sa.String(64), nullable=False),
    )
    op.create_index(
        "ix_attribution_pending_person", "marketing_attribution_pending", ["contact_key"]
    )
    # The window the conversions were worked out with: a worker with another
    # window queues everyone again (service/reports/attribution.py).
    op.create_table(
        "marketing_attribution_window",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        sa.Column("window_s", sa.BigInteger(), nullable=False),
    )
    # The dashboard asks which campaigns had engagement in a range: the index
    # by campaign, type and time (read by nothing since the counts are kept)
    # could not bound the time without the type.
    op.drop_index("ix_engagement_campaign", table_name="marketing_engagement")
    op.create_index(
        "ix_engagement_campaign_time", "marketing_engagement", ["campaign_id", "occurred_at"]
    )
    op.create_table(
        "marketing_conversion",
        # Erasure deletes the order; its conversion goes with it, even one a
        # worker was writing meanwhile.
        sa.Column(
            "order_event_id",
            sa.String(128),
            sa.ForeignKey("marketing_event_log.id", ondelete="CASCADE"),
            primary_key=True,
        ),
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
    _engagement_tables()
    for function in (
        *_CONTACT_DAY_FUNCTIONS,
        *_PENDING_FUNCTIONS,
        _FIGURES_OF_TYPE,
        _COUNT_ENGAGEMENT,
    ):
        op.execute(function)  # one statement each: asyncpg prepares what it runs
    for name, action, table, transition, function in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {name} AFTER {action} ON {table} REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    # The day rollup counts contacts by creation time, which never changes:
    # the database refuses a change rather than let the rollup drift.
    op.execute(_CREATED_AT_FIXED)
    op.execute(
        "CREATE TRIGGER marketing_contact_created_at_fixed BEFORE UPDATE OF created_at "
        "ON marketing_contact FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at) "
        "EXECUTE FUNCTION marketing_reject_created_at_change()"
    )
    # What exists already: the contacts counted, every person with orders or
    # touches queued once.
    op.execute(
        "INSERT INTO marketing_contact_day (day, shard, contacts, first_created, last_created) "
        "SELECT (created_at AT TIME ZONE 'UTC')::date, 0, count(*), min(created_at), "
        "max(created_at) FROM marketing_contact GROUP BY 1"
    )
    op.execute(_BACKFILL_REACH)
    op.execute(_BACKFILL_FIGURES)
    op.execute(
        "INSERT INTO marketing_attribution_pending (contact_key) "
        "SELECT DISTINCT email_sha256 FROM marketing_engagement "
        "WHERE type IN ('opened', 'clicked') AND email_sha256 IS NOT NULL"
    )


def _scope_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("scope", sa.String(16), nullable=False),  # campaign, flow, flow_message
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("scope_id", sa.String(128), nullable=False),  # the campaign's or flow's id
        sa.Column("message_id", sa.String(128), nullable=False),  # '' but for flow_message
    ]


def _engagement_tables() -> None:
    keys = ["scope", "provider", "scope_id", "message_id"]
    op.create_table(
        "marketing_engagement_reach",
        *_scope_columns(),
        sa.Column("figure", sa.String(16), nullable=False),
        sa.Column("person", sa.String(160), nullable=False),
        # Read only to refuse a second count (ON CONFLICT) and by erasure (by
        # person): the person first serves both with one index, which halved
        # the trigger's cost against a second index on person.
        sa.PrimaryKeyConstraint("person", *keys, "figure"),
    )
    op.create_table(
        "marketing_engagement_figures",
        *_scope_columns(),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in _FIGURE_NAMES],
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(*keys, "shard"),
    )


def downgrade() -> None:
    for name, _, table, _, function in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.execute("DROP FUNCTION IF EXISTS marketing_figures_of(text)")
    op.execute("DROP TRIGGER IF EXISTS marketing_contact_created_at_fixed ON marketing_contact")
    op.execute("DROP FUNCTION IF EXISTS marketing_reject_created_at_change()")
    op.drop_index("ix_engagement_campaign_time", table_name="marketing_engagement")
    op.create_index(
        "ix_engagement_campaign", "marketing_engagement", ["campaign_id", "type", "occurred_at"]
    )
    op.drop_table("marketing_attribution_window")
    op.drop_table("marketing_engagement_figures")
    op.drop_table("marketing_engagement_reach")
    op.drop_table("marketing_conversion")
    op.drop_table("marketing_attribution_pending")
    op.drop_table("marketing_contact_day")
