"""Notifying the subscriptions a restock picked, a batch per transaction, in
the flow worker: each person is enrolled in the back-in-stock flow(s), whose
provider message carries the product and its purchase link, and the
subscription records the outcome (NOTIFIED with the enrolment, or SKIPPED
with why: a suppressed address, a flow not live). The subscription's state
and the enrolment commit together, so each is notified once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.flows.definitions import TriggerKind
from service.flows.enrolments import Candidate, Cause, Decision, enrol
from service.flows.people import lock_people, people
from service.flows.triggers import load_flows
from service.storage.models import BackInStockSubscription, Restock
from service.waitlists.states import NOTIFIED, NOTIFYING, SKIPPED

NO_FLOW = "no_back_in_stock_flow"


async def notify_once(session: AsyncSession, now: datetime, limit: int) -> int:
    """Notify up to `limit` picked subscriptions, oldest first; how many."""
    picked = (
        await session.execute(
            select(BackInStockSubscription, Restock.product)
            .join(Restock, Restock.id == BackInStockSubscription.restock_id)
            .where(BackInStockSubscription.state == NOTIFYING)
            .order_by(BackInStockSubscription.created_at, BackInStockSubscription.id)
            .limit(limit)
            .with_for_update(of=BackInStockSubscription, skip_locked=True)
        )
    ).all()
    if not picked:
        return 0
    await lock_people(session, {s.contact_id for s, _ in picked})
    found = await people(session, {s.contact_id for s, _ in picked})
    candidates = [
        Candidate(
            s.contact_id,
            found[s.contact_id].email,
            found[s.contact_id].suppressed,
            found[s.contact_id].consented,
            f"waitlist:{s.id}",
            Cause(TriggerKind.BACK_IN_STOCK, str(s.id), now),
            _context(s, product),
        )
        for s, product in picked
    ]
    flows = [f for f in await load_flows(session) if f.trigger.kind is TriggerKind.BACK_IN_STOCK]
    decided: dict[str, Decision] = {}
    for flow in flows:
        for decision in await enrol(session, flow, candidates, now):
            earlier = decided.get(decision.trigger_ref)
            if earlier is None or (decision.enrolled and not earlier.enrolled):
                decided[decision.trigger_ref] = decision  # an enrolment in any such flow wins
    for subscription, _ in picked:
        outcome = decided.get(f"waitlist:{subscription.id}")
        subscription.ended_at = now
        if outcome is not None and outcome.enrolled:
            subscription.state, subscription.enrolment_id = NOTIFIED, outcome.enrolment_id
        else:
            subscription.state = SKIPPED
            subscription.reason = NO_FLOW if outcome is None else outcome.reason
    await session.flush()
    return len(picked)


def _context(subscription: BackInStockSubscription, product: dict[str, Any]) -> dict[str, Any]:
    """What the provider's message needs: the product as the catalog gave it
    and its purchase link, with the subscription it answers."""
    return {
        "subscription_id": str(subscription.id),
        "product_id": subscription.product_id,
        "variant_id": subscription.variant_id,
        "product": product,
        "purchase_url": product.get("url", ""),
    }
