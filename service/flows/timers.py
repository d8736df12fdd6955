"""Durable timers in PostgreSQL (marketing_timer): armed in the transaction of
the fact they count from, taken by the timer loop in the transaction that acts
on them. A timer is a row, so it survives any process being killed; taking it
deletes it (rows locked SKIP LOCKED, so replicas take disjoint ones), so it
fires once: the deletion and what the firing does commit together or not at
all. Due rows are found through the index on `due_at`, oldest first, so a
backlog after an outage is worked off in order, and no table is scanned."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.flows.people import at_times
from service.storage.bulk import insert_rows
from service.storage.fresh_plans import execute_afresh
from service.storage.models import Timer

# Kinds of timer.
CART = "cart"  # a cart's inactivity: key `<contact id>:<cart id>`
NO_PURCHASE = "no_purchase"  # a win-back flow's: key `<flow id>:<contact id>`
# A running enrolment's completion: key its id (armed by releases before
# ENROLMENTS_END; those still pending fire as they always did).
ENROLMENT_END = "enrolment_end"
# The completion of the enrolments one decision began in a flow (they share
# their flow and beginning): key `<flow id>@<their beginning, epoch µs>`, no
# contact. One timer for a restock's thousand enrolments, not a thousand.
ENROLMENTS_END = "enrolments_end"


@dataclass(frozen=True, slots=True)
class Armed:
    """A timer to set: due at `due_at`, counting from `base_at`."""

    kind: str
    key: str
    contact_id: uuid.UUID | None  # None: many people's (ENROLMENTS_END)
    due_at: datetime
    base_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Fired:
    """A timer taken because it fell due."""

    kind: str
    key: str
    contact_id: uuid.UUID | None
    due_at: datetime
    base_at: datetime
    payload: dict[str, Any]

    @property
    def person(self) -> uuid.UUID:
        """The contact of a person's timer (every kind but ENROLMENTS_END)."""
        if self.contact_id is None:
            raise ValueError(f"a {self.kind} timer of no one: {self.key}")
        return self.contact_id


async def arm(session: AsyncSession, timers: Sequence[Armed], *, latest_wins: bool) -> None:
    """Set these timers. One already set for the same (kind, key) is moved:
    with `latest_wins`, only to a later base (a cart's activity that arrives
    late must not bring its abandonment forward); otherwise to this one."""
    if not timers:
        return
    unique = {(t.kind, t.key): t for t in sorted(timers, key=lambda t: t.base_at)}
    rows = [
        {
            "kind": t.kind,
            "key": t.key,
            "contact_id": t.contact_id,
            "due_at": t.due_at,
            "base_at": t.base_at,
            "payload": t.payload,
        }
        for t in sorted(unique.values(), key=lambda t: (t.kind, t.key))
    ]
    statement = insert_rows(Timer, rows)
    new = statement.excluded
    update = statement.on_conflict_do_update(
        index_elements=[Timer.kind, Timer.key],
        set_={"due_at": new.due_at, "base_at": new.base_at, "payload": new.payload},
        where=(new.base_at >= Timer.base_at) if latest_wins else None,
    )
    await session.execute(update)


async def cancel(session: AsyncSession, kind: str, keys: Sequence[str]) -> None:
    if keys:
        await session.execute(delete(Timer).where(Timer.kind == kind, Timer.key.in_(keys)))


async def cancel_for_contacts(
    session: AsyncSession, kind: str, contacts: Sequence[tuple[uuid.UUID, datetime]]
) -> int:
    """Cancel each contact's timers of `kind` armed from a fact no later than
    its time (a purchase cancels the carts left before it, not one filled
    after it); how many."""
    if not contacts:
        return 0
    pairs = sorted(set(contacts))
    rows = at_times(pairs, "x")
    gone = delete(Timer).where(
        Timer.kind == kind,
        select(1)
        .select_from(rows)
        .where(rows.c.contact_id == Timer.contact_id, Timer.base_at <= rows.c.at)
        .exists(),
    )
    result = await session.execute(gone)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def take_due(session: AsyncSession, now: datetime, limit: int) -> list[Fired]:
    """Up to `limit` timers due by `now`, oldest first, deleted in this
    transaction (SKIP LOCKED: another replica's are left to it)."""
    due = (
        select(Timer.kind, Timer.key)
        .where(Timer.due_at <= now)
        .order_by(Timer.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    taken = (
        delete(Timer)
        .where(tuple_(Timer.kind, Timer.key).in_(select(due.c.kind, due.c.key)))
        .returning(
            Timer.kind, Timer.key, Timer.contact_id, Timer.due_at, Timer.base_at, Timer.payload
        )
    )
    rows = (await execute_afresh(session, taken)).all()
    fired = [Fired(*row) for row in rows]
    fired.sort(key=lambda f: f.due_at)
    return fired


async def next_due(session: AsyncSession, *, before: datetime) -> datetime | None:
    """When the earliest timer due before `before` falls due (None: none is).
    The bound also gives the poll a parameter to be planned for (`execute_afresh`)."""
    earliest = select(func.min(Timer.due_at)).where(Timer.due_at < before)
    return (await execute_afresh(session, earliest)).scalar()


async def move_by_base(session: AsyncSession, kind: str, key_prefix: str, seconds: int) -> int:
    """Re-time every timer of `kind` whose key starts with `key_prefix` to
    `seconds` after its base (a win-back flow given a new delay); how many."""
    result = await session.execute(
        text(
            "UPDATE marketing_timer SET due_at = base_at + :seconds * INTERVAL '1 second'"
            " WHERE kind = :kind AND key LIKE :prefix"
        ),
        {"seconds": seconds, "kind": kind, "prefix": key_prefix.replace("%", r"\%") + "%"},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
