"""Notifying the subscriptions a restock picked, a batch per transaction, in
the flow worker: each person is enrolled in the back-in-stock flow(s), whose
provider message carries the product and its purchase link, and the
subscription records the outcome (NOTIFIED with the enrolment, or SKIPPED
with why: a suppressed address, a flow not live). The subscription's state
and the enrolment commit together, so each is notified once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.flows.definitions import TriggerKind
from service.flows.enrolments import Candidate, Cause, Decision, enrol
from service.flows.people import lock_people, people
from service.flows.triggers import load_flows
from service.storage.bulk import rows_table
from service.storage.models import BackInStockSubscription, Restock
from service.waitlists.states import NOTIFIED, NOTIFYING, SKIPPED

NO_FLOW = "no_back_in_stock_flow"


async def notify_once(session: AsyncSession, now: datetime, limit: int) -> int:
    """Notify up to `limit` picked subscriptions, oldest first; how many."""
    S = BackInStockSubscription
    picked = (
        await session.execute(
            select(S.id, S.contact_id, S.product_id, S.variant_id, Restock.product)
            .join(Restock, Restock.id == S.restock_id)
            .where(S.state == NOTIFYING)
            .order_by(S.created_at, S.id)
            .limit(limit)
            .with_for_update(of=S, skip_locked=True)
        )
    ).all()
    if not picked:
        return 0
    await lock_people(session, {s.contact_id for s in picked})
    found = await people(session, {s.contact_id for s in picked})
    candidates = [
        Candidate(
            s.contact_id,
            found[s.contact_id].email,
            found[s.contact_id].suppressed,
            found[s.contact_id].consented,
            f"waitlist:{s.id}",
            Cause(TriggerKind.BACK_IN_STOCK, str(s.id), now),
            _context(s),
        )
        for s in picked
    ]
    flows = [f for f in await load_flows(session) if f.trigger.kind is TriggerKind.BACK_IN_STOCK]
    decided: dict[str, Decision] = {}
    for flow in flows:
        for decision in await enrol(session, flow, candidates, now):
            earlier = decided.get(decision.trigger_ref)
            if earlier is None or (decision.enrolled and not earlier.enrolled):
                decided[decision.trigger_ref] = decision  # an enrolment in any such flow wins
    await _record_outcomes(session, [(s.id, decided.get(f"waitlist:{s.id}")) for s in picked], now)
    return len(picked)


async def _record_outcomes(
    session: AsyncSession, outcomes: list[tuple[uuid.UUID, Decision | None]], now: datetime
) -> None:
    """Each subscription NOTIFIED with its enrolment, or SKIPPED with why, in
    one statement."""
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
            state=rows.c.state, reason=rows.c.reason, enrolment_id=rows.c.enrolment_id, ended_at=now
        )
        .execution_options(synchronize_session=False)
    )


def _context(picked: Row[Any]) -> dict[str, Any]:
    """What the provider's message needs: the product as the catalog gave it
    and its purchase link, with the subscription it answers."""
    return {
        "subscription_id": str(picked.id),
        "product_id": picked.product_id,
        "variant_id": picked.variant_id,
        "product": picked.product,
        "purchase_url": picked.product.get("url", ""),
    }
