"""Order attribution, kept as orders and touches arrive rather than worked out
on every report: `marketing_conversion` holds each order attributed to a
message. Triggers (migration 0013) queue a person in
`marketing_attribution_pending` when an order of theirs is logged or they open
or click a message; `attribute_pending` takes a batch of queued people and
works out all their orders again.

The rule is last touch: a `placed_order` is the conversion of the last message
its person clicked in the attribution window before the order, or, without a
click, the last one they opened. Each order is attributed once.

Why this is exact whatever the order of arrival: each order or touch queues
an entry for its person in its own transaction, and the worker can take an
entry only once that transaction has committed, so the pass an entry causes
sees the order or touch that queued it; and one worker at a time works on a
person (a transaction-scoped advisory lock, tried, never waited for). Writers
neither lock nor wait for anything in the queue. A batch is claimed with SKIP LOCKED (replicas share
the queue) and written with upserts (two passes over one person end alike)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Numeric, case, delete, func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.sql import ORDER_TOTAL_PATH
from service.reports.figures import NANOS
from service.storage.database import Database
from service.storage.fresh_plans import execute_afresh
from service.storage.models import (
    AttributionPending,
    AttributionWindow,
    Conversion,
    Engagement,
    EventLog,
)

PLACED_ORDER = "placed_order"
TOUCHES = ("clicked", "opened")  # the engagement types an order is attributed to

# Entries in the table's order (roughly the oldest first); another worker's
# are skipped, never waited for. Not ORDER BY id: the index walk passes every
# entry deleted before that no snapshot lets it forget yet, batch after batch.
_CLAIM = text(
    "DELETE FROM marketing_attribution_pending WHERE id IN ("
    " SELECT id FROM marketing_attribution_pending"
    " LIMIT :limit FOR UPDATE SKIP LOCKED)"
    " RETURNING contact_key"
)
# One worker at a time per person: another worker's pass over a person may
# have read before an order or touch committed and write after this one, so
# a person whose lock is taken is queued again instead (never waited for).
_LOCKED_HERE = text(
    "SELECT k FROM unnest(CAST(:keys AS text[])) AS k"
    " WHERE pg_try_advisory_xact_lock(hashtextextended(k, 0))"
)
_QUEUE_AGAIN = text(
    "INSERT INTO marketing_attribution_pending (contact_key) SELECT unnest(CAST(:keys AS text[]))"
)
# The same people's other entries, committed by now: this pass, whose reads
# come after this statement, sees what they were queued for. Entries not yet
# committed stay for a later pass.
_ALSO_QUEUED = text(
    "DELETE FROM marketing_attribution_pending WHERE id IN ("
    " SELECT id FROM marketing_attribution_pending WHERE contact_key = ANY(:keys)"
    " FOR UPDATE SKIP LOCKED)"
)


async def attribute_pending(session: AsyncSession, window: timedelta, limit: int) -> int:
    """Attribute again every order of the people of up to `limit` queued
    entries; how many entries were claimed (the worker goes on at once while
    batches come full)."""
    claimed = list((await execute_afresh(session, _CLAIM, {"limit": limit})).scalars())
    wanted = sorted(set(claimed))
    if not wanted:
        return 0
    keys = sorted((await session.execute(_LOCKED_HERE, {"keys": wanted})).scalars())
    if len(keys) < len(wanted):
        await session.execute(_QUEUE_AGAIN, {"keys": sorted(set(wanted) - set(keys))})
    if keys:
        await session.execute(_ALSO_QUEUED, {"keys": keys})
        await attribute_people(session, keys, window)
    return len(claimed)


async def attribute_people(session: AsyncSession, keys: list[str], window: timedelta) -> None:
    """Replace the conversions of the people `keys` (email digests) by what
    their orders and touches say now."""
    await session.execute(delete(Conversion).where(Conversion.contact_key.in_(keys)))
    touch = (
        select(
            Engagement.id,
            Engagement.provider,
            Engagement.campaign_id,
            Engagement.flow_id,
            Engagement.message_id,
        )
        .where(
            Engagement.email_sha256 == EventLog.contact_key,
            Engagement.type.in_(TOUCHES),
            Engagement.occurred_at <= EventLog.occurred_at,
            Engagement.occurred_at > EventLog.occurred_at - window,
        )
        .order_by(
            case((Engagement.type == "clicked", 0), else_=1),
            Engagement.occurred_at.desc(),
            Engagement.id.desc(),
        )
        .limit(1)
        .lateral("touch")
    )
    total = EventLog.data[ORDER_TOTAL_PATH]
    units = func.coalesce(total["units"].astext.cast(Numeric()), 0)
    nanos = func.coalesce(total["nanos"].astext.cast(Numeric()), 0)
    orders = (
        select(
            EventLog.id,
            EventLog.contact_key,
            EventLog.occurred_at,
            touch.c.id,
            touch.c.provider,
            touch.c.campaign_id,
            touch.c.flow_id,
            touch.c.message_id,
            func.coalesce(total["currency_code"].astext, literal("")),
            units * NANOS + nanos,
        )
        .join(touch, literal(True))
        .where(EventLog.contact_key.in_(keys), EventLog.type == PLACED_ORDER)
    )
    columns = [
        "order_event_id",
        "contact_key",
        "ordered_at",
        "engagement_id",
        "provider",
        "campaign_id",
        "flow_id",
        "message_id",
        "currency",
        "amount_nanos",
    ]
    statement = insert(Conversion).from_select(columns, orders)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Conversion.order_event_id],
            set_={name: statement.excluded[name] for name in columns[1:]},
        )
    )


_REQUEUE_EVERYONE_TOUCHED = text(
    "INSERT INTO marketing_attribution_pending (contact_key)"
    " SELECT DISTINCT email_sha256 FROM marketing_engagement"
    " WHERE type IN ('opened', 'clicked') AND email_sha256 IS NOT NULL"
)
_WINDOW_ROW = 1


async def adopt_window(session: AsyncSession, window: timedelta) -> bool:
    """Record `window` as the one conversions are worked out with; when it
    differs from the one recorded, queue everyone who ever opened or clicked,
    so that every conversion is worked out again with it. Whether it did."""
    seconds = int(window.total_seconds())
    recorded = await session.scalar(
        select(AttributionWindow.window_s)
        .where(AttributionWindow.id == _WINDOW_ROW)
        .with_for_update()
    )
    if recorded == seconds:
        return False
    await session.execute(
        insert(AttributionWindow)
        .values(id=_WINDOW_ROW, window_s=seconds)
        .on_conflict_do_update(index_elements=[AttributionWindow.id], set_={"window_s": seconds})
    )
    if recorded is not None:
        await session.execute(_REQUEUE_EVERYONE_TOUCHED)
    return recorded is not None


async def attribution_queue(db: Database) -> int:
    """How many entries wait for the attribution worker (a person may have several)."""
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(AttributionPending)) or 0)


async def forget(session: AsyncSession, key: str) -> None:
    """An erased person's conversions go with their orders. Their queue entries
    first, in the worker's order (it claims entries, then replaces the person's
    conversions): erasure waits for a pass over them rather than deadlock with it."""
    await session.execute(delete(AttributionPending).where(AttributionPending.contact_key == key))
    await session.execute(delete(Conversion).where(Conversion.contact_key == key))
