"""A waitlist subscription's states, and taking buyers off waitlists: apart
from the use cases, so the flow triggers (which every contact change reaches)
can call it without importing them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.models import BackInStockSubscription

WAITING, NOTIFYING, NOTIFIED, SKIPPED, REMOVED = (
    "WAITING",
    "NOTIFYING",
    "NOTIFIED",
    "SKIPPED",
    "REMOVED",
)
STATES = (WAITING, NOTIFYING, NOTIFIED, SKIPPED, REMOVED)
PURCHASED = "purchased"


async def remove_purchased(
    session: AsyncSession, purchases: Sequence[tuple[uuid.UUID, str]], now: datetime
) -> int:
    """Take buyers off the waitlists of what they bought (Property 34): each
    (contact, product) pair's waiting subscriptions, any variant; how many."""
    if not purchases:
        return 0
    pairs = sorted(set(purchases))
    result = await session.execute(
        update(BackInStockSubscription)
        .where(
            BackInStockSubscription.state == WAITING,
            tuple_(BackInStockSubscription.contact_id, BackInStockSubscription.product_id).in_(
                pairs
            ),
        )
        .values(state=REMOVED, reason=PURCHASED, ended_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
