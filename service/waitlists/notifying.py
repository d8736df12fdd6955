"""Notifying the subscriptions restocks answer, a batch per transaction, in
the flow worker: each person is enrolled in the back-in-stock flow(s), whose
provider message carries the product and its purchase link, and the
subscription records the outcome (NOTIFIED with the enrolment, or SKIPPED
with why: a suppressed address, a flow not live). The subscription's state
and the enrolment commit together, so each is notified once.

Batches come from the subscriptions a restock picked (NOTIFYING), then from
the ranges of open restocks (service.waitlists.restocks): taken from WAITING
within a range, oldest first, until nobody in it waits. Rows another batch
holds are skipped, so several batches go side by side."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.flows.definitions import TriggerKind
from service.flows.enrolments import Candidate, Cause, Decision, enrol
from service.flows.people import lock_people, people
from service.flows.triggers import load_flows
from service.storage.fresh_plans import execute_afresh
from service.waitlists.restocks import IN_RANGE
from service.waitlists.states import NOTIFIED, SKIPPED

NO_FLOW = "no_back_in_stock_flow"
# Picked by a restock (with a quantity), oldest first, with the restock's product.
_PICKED = text(
    "SELECT s.id, s.ctid, s.contact_id, s.product_id, s.variant_id, r.id, r.product"
    " FROM marketing_back_in_stock_subscription s JOIN marketing_restock r ON r.id = s.restock_id"
    " WHERE s.state = 'NOTIFYING' ORDER BY s.created_at, s.id LIMIT :most"
    " FOR UPDATE OF s SKIP LOCKED"
)
# Open ranges looked at per batch, oldest first: those whose rows other batches
# hold are passed over for the next.
_OPEN_AT_ONCE = 20
_OPEN = text(
    "SELECT id, product_id, variant_id, product, until_created_at, until_id"
    " FROM marketing_restock WHERE finished_at IS NULL AND until_id IS NOT NULL"
    " ORDER BY created_at, id LIMIT :most"
)
_TAKE = text(
    "SELECT s.id, s.ctid, s.contact_id, s.product_id, s.variant_id"
    f" FROM marketing_back_in_stock_subscription s WHERE {IN_RANGE}"
    " ORDER BY s.created_at, s.id LIMIT :most FOR UPDATE OF s SKIP LOCKED"
)
# Finished once nobody in its range waits: rows another batch is notifying still
# read as waiting here, so a batch that rolls back leaves it open. A restock
# another batch is finishing is left to it (no batch waits on another's).
_FINISH = text(
    "UPDATE marketing_restock SET finished_at = :now WHERE id = ("
    " SELECT id FROM marketing_restock WHERE id = :restock AND finished_at IS NULL"
    " FOR UPDATE SKIP LOCKED)"
    f" AND NOT EXISTS (SELECT 1 FROM marketing_back_in_stock_subscription s WHERE {IN_RANGE})"
)

# Outcomes by row position, the id checked as well.
_RECORD_OUTCOMES = text(
    "UPDATE marketing_back_in_stock_subscription AS s"
    " SET state = r.state, reason = r.reason, enrolment_id = r.enrolment_id,"
    " restock_id = r.restock_id, ended_at = :now"
    " FROM unnest(CAST(:tids AS tid[]), CAST(:ids AS uuid[]), CAST(:states AS varchar[]),"
    " CAST(:reasons AS varchar[]), CAST(:enrolments AS uuid[]), CAST(:restocks AS uuid[]))"
    " AS r(tid, id, state, reason, enrolment_id, restock_id)"
    " WHERE s.ctid = r.tid AND s.id = r.id"
)


class _Taken(NamedTuple):
    """A subscription a batch notifies, with the restock that answers it, and where its
    row lies (`tid`: locked by the batch, it stays there until the batch ends)."""

    id: uuid.UUID
    tid: tuple[int, int]  # (block, offset), as asyncpg reads a tid
    contact_id: uuid.UUID
    product_id: str
    variant_id: str
    restock_id: uuid.UUID
    product: dict[str, Any]


async def notify_once(session: AsyncSession, now: datetime, limit: int) -> int:
    """Notify up to `limit` subscriptions: picked ones, else those of the
    oldest open range that has any free; how many (0: none to take now)."""
    taken = [
        _Taken(*row) for row in (await execute_afresh(session, _PICKED, {"most": limit})).all()
    ]
    if not taken:
        taken = await _take_from_ranges(session, now, limit)
    if taken:
        await _notify(session, taken, now)
    return len(taken)


async def _take_from_ranges(session: AsyncSession, now: datetime, limit: int) -> list[_Taken]:
    for restock_id, product_id, variant_id, product, until_at, until_id in (
        await execute_afresh(session, _OPEN, {"most": _OPEN_AT_ONCE})
    ).all():
        params = {
            "product": product_id,
            "variant": variant_id,
            "until_at": until_at,
            "until_id": until_id,
        }
        rows = (await execute_afresh(session, _TAKE, params | {"most": limit})).all()
        if rows:
            return [
                _Taken(id_, tid, contact, prod, variant, restock_id, product)
                for id_, tid, contact, prod, variant in rows
            ]
        await session.execute(_FINISH, params | {"restock": restock_id, "now": now})
    return []


async def _notify(session: AsyncSession, taken: Sequence[_Taken], now: datetime) -> None:
    await lock_people(session, {s.contact_id for s in taken})
    found = await people(session, {s.contact_id for s in taken})
    candidates = []
    for s in taken:
        person = found[s.contact_id]
        candidates.append(
            Candidate(
                s.contact_id,
                person.email,
                person.suppressed,
                person.consented,
                f"waitlist:{s.id}",
                Cause(TriggerKind.BACK_IN_STOCK, str(s.id), now),
                _context(s),
            )
        )
    flows = [f for f in await load_flows(session) if f.trigger.kind is TriggerKind.BACK_IN_STOCK]
    decided: dict[str, Decision] = {}
    for flow in flows:
        for decision in await enrol(session, flow, candidates, now):
            earlier = decided.get(decision.trigger_ref)
            if earlier is None or (decision.enrolled and not earlier.enrolled):
                decided[decision.trigger_ref] = decision  # an enrolment in any such flow wins
    outcomes = [(s, decided.get(f"waitlist:{s.id}")) for s in taken]
    await _record_outcomes(session, outcomes, now)


async def _record_outcomes(
    session: AsyncSession, outcomes: list[tuple[_Taken, Decision | None]], now: datetime
) -> None:
    """Each subscription NOTIFIED with its enrolment, or SKIPPED with why, by
    its restock, in one statement: each row updated where the batch found and
    locked it (a TID scan)."""
    # Found again by key, PostgreSQL planned a batch of 2,000 as a hash of the whole
    # table whenever it planned for the batch's size (65 against 27 ms a batch at
    # 200,000 rows; README, figure 10).
    enrolled = [d if d is not None and d.enrolled else None for _, d in outcomes]
    params = {
        "tids": [s.tid for s, _ in outcomes],
        "ids": [s.id for s, _ in outcomes],
        "states": [SKIPPED if e is None else NOTIFIED for e in enrolled],
        "reasons": [
            None if e is not None else NO_FLOW if d is None else d.reason
            for (_, d), e in zip(outcomes, enrolled, strict=True)
        ],
        "enrolments": [None if e is None else e.enrolment_id for e in enrolled],
        "restocks": [s.restock_id for s, _ in outcomes],
        "now": now,
    }
    result = cast(CursorResult[Any], await session.execute(_RECORD_OUTCOMES, params))
    updated = result.rowcount
    if updated != len(outcomes):  # a row not where its batch locked it: nothing is kept
        raise RuntimeError(f"{updated} of {len(outcomes)} waitlist subscriptions recorded")


def _context(s: _Taken) -> dict[str, Any]:
    """What the provider's message needs: the product as the catalog gave it
    and its purchase link, with the subscription it answers."""
    return {
        "subscription_id": str(s.id),
        "product_id": s.product_id,
        "variant_id": s.variant_id,
        "product": s.product,
        "purchase_url": s.product.get("url", ""),
    }
