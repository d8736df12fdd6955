"""Notifying the subscriptions a restock answers, a batch per transaction, in
the flow worker: each person is enrolled in the back-in-stock flow(s), whose
provider message carries the product and its purchase link, and the
subscription records the outcome (NOTIFIED with the enrolment, or SKIPPED
with why: a suppressed address, a flow not live). The subscription's state
and the enrolment commit together, so each is notified once.

A restock answers a range of waiting subscriptions (service.waitlists.rules):
batches are taken from WAITING within it, oldest first, rows another batch
holds skipped (so several batches go side by side), until none is left. Who
leaves the waitlist, or buys the product, before their batch is not notified."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.flows.definitions import TriggerKind
from service.flows.enrolments import Candidate, Cause, Decision, enrol
from service.flows.people import lock_people, people
from service.flows.triggers import load_flows
from service.storage.bulk import rows_table
from service.storage.models import BackInStockSubscription
from service.waitlists.states import NOTIFIED, SKIPPED

NO_FLOW = "no_back_in_stock_flow"
# Open restocks looked at per batch, oldest first: those whose rows other
# batches hold are passed over for the next.
_OPEN_AT_ONCE = 20
_OPEN = text(
    "SELECT id, product_id, variant_id, product, until_created_at, until_id "
    "FROM marketing_restock WHERE finished_at IS NULL ORDER BY created_at, id LIMIT :most"
)
# A restock's range among the waiting (the index of the waiting, by product).
_RANGE = (
    "s.product_id = :product AND s.state = 'WAITING'"
    " AND (:variant = '' OR s.variant_id IN ('', :variant))"
    " AND (s.created_at, s.id) <= (:until_at, :until_id)"
)
_TAKE = text(
    "SELECT s.id, s.contact_id, s.product_id, s.variant_id"
    f" FROM marketing_back_in_stock_subscription s WHERE {_RANGE}"
    " ORDER BY s.created_at, s.id LIMIT :most FOR UPDATE OF s SKIP LOCKED"
)
# Finished once nobody in its range waits: rows another batch is notifying
# still read as waiting here, so a batch that rolls back leaves it open.
_FINISH = text(
    "UPDATE marketing_restock SET finished_at = :now WHERE id = :restock AND NOT EXISTS ("
    f" SELECT 1 FROM marketing_back_in_stock_subscription s WHERE {_RANGE})"
)


@dataclass(frozen=True)
class _Restock:
    id: uuid.UUID
    product_id: str
    variant_id: str
    product: dict[str, Any]
    until_created_at: datetime
    until_id: uuid.UUID

    def range(self) -> dict[str, Any]:
        return {
            "product": self.product_id,
            "variant": self.variant_id,
            "until_at": self.until_created_at,
            "until_id": self.until_id,
        }


async def notify_once(session: AsyncSession, now: datetime, limit: int) -> int:
    """Notify up to `limit` subscriptions of the oldest open restock that has
    any free; how many (0: none is left to take now)."""
    for row in await session.execute(_OPEN, {"most": _OPEN_AT_ONCE}):
        restock = _Restock(*row)
        taken = (await session.execute(_TAKE, restock.range() | {"most": limit})).all()
        if taken:
            await _notify(session, restock, taken, now)
            return len(taken)
        await session.execute(_FINISH, restock.range() | {"restock": restock.id, "now": now})
    return 0


async def _notify(
    session: AsyncSession, restock: _Restock, taken: Sequence[Row[Any]], now: datetime
) -> None:
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
                _context(s, restock.product),
            )
        )
    flows = [f for f in await load_flows(session) if f.trigger.kind is TriggerKind.BACK_IN_STOCK]
    decided: dict[str, Decision] = {}
    for flow in flows:
        for decision in await enrol(session, flow, candidates, now):
            earlier = decided.get(decision.trigger_ref)
            if earlier is None or (decision.enrolled and not earlier.enrolled):
                decided[decision.trigger_ref] = decision  # an enrolment in any such flow wins
    outcomes = [(s.id, decided.get(f"waitlist:{s.id}")) for s in taken]
    await _record_outcomes(session, restock.id, outcomes, now)


async def _record_outcomes(
    session: AsyncSession,
    restock_id: uuid.UUID,
    outcomes: list[tuple[uuid.UUID, Decision | None]],
    now: datetime,
) -> None:
    """Each subscription NOTIFIED with its enrolment, or SKIPPED with why, by
    this restock, in one statement."""
    S = BackInStockSubscription
    rows = rows_table(
        S,
        ["id", "state", "reason", "enrolment_id"],
        [
            {"id": id_, "state": NOTIFIED, "reason": None, "enrolment_id": d.enrolment_id}
            if d is not None and d.enrolled
            else {
                "id": id_,
                "state": SKIPPED,
                "reason": NO_FLOW if d is None else d.reason,
                "enrolment_id": None,
            }
            for id_, d in outcomes
        ],
    )
    await session.execute(
        update(S)
        .where(S.id == rows.c.id)
        .values(
            state=rows.c.state,
            reason=rows.c.reason,
            enrolment_id=rows.c.enrolment_id,
            restock_id=restock_id,
            ended_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def _context(picked: Row[Any], product: dict[str, Any]) -> dict[str, Any]:
    """What the provider's message needs: the product as the catalog gave it
    and its purchase link, with the subscription it answers."""
    return {
        "subscription_id": str(picked.id),
        "product_id": picked.product_id,
        "variant_id": picked.variant_id,
        "product": product,
        "purchase_url": product.get("url", ""),
    }
