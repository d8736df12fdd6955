"""flows: flows, enrolment decisions and durable timers, with the built-in
flows (welcome, cart recovery, post-purchase, win-back, back in stock)

Joins and leaves of a segment some flow names (as its trigger or an exit)
are signalled to the flow worker through marketing_flow_signal, written by a
statement trigger on marketing_segment_change in the transaction that
recorded them: every path that changes membership (evaluations, manual
members, the newsletter) is covered, none is missed on a crash, and a
segment no flow names costs one EXISTS per statement.

Every contact whose last purchase is less than 90 days old gets the win-back
timer of the built-in win-back flow (90 days after that purchase). Those
lapsed already are not enrolled by the upgrade: a release must not send a
win-back to every past customer at once. (UpdateFlow can arm them on purpose:
a flow made a win-back flow arms every buyer's timer.)

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DAY_S = 86_400
# (id, display name, description, trigger kind, trigger event, no purchase
#  for (s), entry rule, key property, exit events, completes after (s))
_BUILT_IN = [
    (
        "welcome",
        "Welcome",
        "Greets a new registration; ends early with a first purchase.",
        "REGISTRATION",
        None,
        None,
        "ONCE_PER_CONTACT",
        None,
        ["placed_order"],
        14 * _DAY_S,
    ),
    (
        "cart-recovery",
        "Cart recovery",
        "A cart left inactive for an hour (cart_abandoned); ends with a purchase.",
        "EVENT",
        "cart_abandoned",
        None,
        "ONCE_PER_KEY",
        "cart.cart_id",
        ["placed_order"],
        3 * _DAY_S,
    ),
    (
        "post-purchase",
        "Post-purchase",
        "Thanks the buyer of every order and asks for a review.",
        "EVENT",
        "placed_order",
        None,
        "ONCE_PER_KEY",
        "order.order_id",
        [],
        30 * _DAY_S,
    ),
    (
        "win-back",
        "Win-back",
        "A customer whose last purchase is 90 days old; ends with a purchase.",
        "NO_PURCHASE",
        None,
        90 * _DAY_S,
        "REENTER_AFTER_EXIT",
        None,
        ["placed_order"],
        30 * _DAY_S,
    ),
    (
        "back-in-stock",
        "Back in stock",
        "Tells a waiting contact that the product they asked about is back.",
        "BACK_IN_STOCK",
        None,
        None,
        "ONCE_PER_KEY",
        "subscription_id",
        [],
        7 * _DAY_S,
    ),
]


def upgrade() -> None:
    _create_flows()
    _create_enrolments()
    _create_timers()
    _create_signals()
    _seed_built_in_flows()
    op.execute(
        """
        INSERT INTO marketing_timer (kind, key, contact_id, due_at, base_at, payload)
        SELECT 'no_purchase', 'win-back:' || id, id,
               last_purchase_time + INTERVAL '90 days', last_purchase_time, '{}'
        FROM marketing_contact WHERE last_purchase_time > now() - INTERVAL '90 days'
        """
    )


def _create_flows() -> None:
    op.create_table(
        "marketing_flow",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("trigger_kind", sa.String(20), nullable=False),
        sa.Column("trigger_event", sa.String(128)),
        sa.Column("trigger_filter", JSONB()),
        sa.Column("trigger_segment", sa.String(63)),
        sa.Column("no_purchase_for_s", sa.BigInteger()),
        sa.Column("entry_rule", sa.String(24), nullable=False),
        sa.Column("entry_key_property", sa.String(900)),
        sa.Column("cooldown_s", sa.BigInteger()),
        sa.Column("exit_events", sa.ARRAY(sa.String(128)), nullable=False, server_default="{}"),
        sa.Column("exit_segments", sa.ARRAY(sa.String(63)), nullable=False, server_default="{}"),
        sa.Column("exit_on_unsubscribe", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("live", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("klaviyo_start_metric", sa.String(128), nullable=False, server_default=""),
        sa.Column("klaviyo_exit_metric", sa.String(128), nullable=False, server_default=""),
        sa.Column("klaviyo_property", sa.String(128), nullable=False, server_default=""),
        sa.Column("activecampaign_automation_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("completes_after_s", sa.BigInteger(), nullable=False),
        sa.Column("built_in", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def _create_enrolments() -> None:
    op.create_table(
        "marketing_enrolment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "flow_id",
            sa.String(63),
            sa.ForeignKey("marketing_flow.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("entry_key", sa.String(256), nullable=False, server_default=""),
        sa.Column("trigger_ref", sa.String(200), nullable=False),
        sa.Column("cause_kind", sa.String(20), nullable=False),
        sa.Column("cause_ref", sa.String(128), nullable=False, server_default=""),
        sa.Column("cause_time", sa.DateTime(timezone=True)),
        sa.Column("context", JSONB(), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("exit_reason", sa.String(300)),
        sa.Column("rejection_reason", sa.String(32)),
    )
    op.create_index(
        "uq_marketing_enrolment_trigger",
        "marketing_enrolment",
        ["flow_id", "trigger_ref"],
        unique=True,
    )
    op.create_index(
        "uq_marketing_enrolment_active",
        "marketing_enrolment",
        ["flow_id", "contact_id", "entry_key"],
        unique=True,
        postgresql_where=sa.text("state = 'ACTIVE'"),
    )
    op.create_index(
        "ix_marketing_enrolment_contact", "marketing_enrolment", ["contact_id", "flow_id"]
    )
    op.create_index(
        "ix_marketing_enrolment_flow_created",
        "marketing_enrolment",
        ["flow_id", "created_at", "id"],
    )
    op.create_index("ix_marketing_enrolment_created", "marketing_enrolment", ["created_at", "id"])


def _create_timers() -> None:
    op.create_table(
        "marketing_timer",
        sa.Column("kind", sa.String(24), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("base_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", JSONB(), nullable=False, server_default="{}"),
    )
    op.create_index("ix_marketing_timer_due", "marketing_timer", ["due_at"])
    op.create_index("ix_marketing_timer_contact", "marketing_timer", ["contact_id", "kind"])


def _create_signals() -> None:
    op.create_table(
        "marketing_flow_signal",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("segment_id", sa.String(63), nullable=False),
        sa.Column(
            "contact_id",
            sa.Uuid(),
            sa.ForeignKey("marketing_contact.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("joined", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        """
        CREATE FUNCTION marketing_flow_segment_signal() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO marketing_flow_signal (segment_id, contact_id, joined, changed_at)
            SELECT c.segment_id, c.contact_id, c.joined, c.changed_at
            FROM new_changes c
            WHERE EXISTS (
                SELECT 1 FROM marketing_flow f
                WHERE f.trigger_segment = c.segment_id OR c.segment_id = ANY(f.exit_segments)
            )
            ORDER BY c.contact_id;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER marketing_flow_segment_signal
        AFTER INSERT ON marketing_segment_change
        REFERENCING NEW TABLE AS new_changes
        FOR EACH STATEMENT EXECUTE FUNCTION marketing_flow_segment_signal()
        """
    )


def _seed_built_in_flows() -> None:
    flows = sa.table(
        "marketing_flow",
        sa.column("exit_events", sa.ARRAY(sa.String())),
        *(
            sa.column(name)
            for name in (
                "id",
                "display_name",
                "description",
                "trigger_kind",
                "trigger_event",
                "no_purchase_for_s",
                "entry_rule",
                "entry_key_property",
                "exit_on_unsubscribe",
                "live",
                "klaviyo_start_metric",
                "klaviyo_exit_metric",
                "klaviyo_property",
                "completes_after_s",
                "built_in",
                "created_at",
                "updated_at",
            )
        ),
    )
    rows = []
    for flow_id, name, about, kind, event, idle_s, rule, key, exits, length_s in _BUILT_IN:
        metric = flow_id.replace("-", "_")
        rows.append(
            {
                "id": flow_id,
                "display_name": name,
                "description": about,
                "trigger_kind": kind,
                "trigger_event": event,
                "no_purchase_for_s": idle_s,
                "entry_rule": rule,
                "entry_key_property": key,
                "exit_events": exits,
                "exit_on_unsubscribe": True,
                "live": True,
                "klaviyo_start_metric": f"{metric}_flow_started",
                "klaviyo_exit_metric": f"{metric}_flow_exited",
                "klaviyo_property": f"flow_{metric}",
                "completes_after_s": length_s,
                "built_in": True,
                "created_at": sa.func.now(),
                "updated_at": sa.func.now(),
            }
        )
    op.execute(flows.insert().values(rows))


def downgrade() -> None:
    op.execute("DROP TRIGGER marketing_flow_segment_signal ON marketing_segment_change")
    op.execute("DROP FUNCTION marketing_flow_segment_signal()")
    op.drop_table("marketing_flow_signal")
    op.drop_table("marketing_timer")
    op.drop_table("marketing_enrolment")
    op.drop_table("marketing_flow")
