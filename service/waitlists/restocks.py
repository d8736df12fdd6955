"""A restock (NotifyBackInStock) and the waiting subscriptions it answers: the
oldest first, without a variant every one of the product's, and a subscription
without a variant by a restock of any. The flow worker notifies them
(service.waitlists.notifying), a batch per transaction.

Two ways of answering, by whether the restock has a `quantity`:
- **a range** (no quantity: everyone waiting): the restock records how many wait
  and the last of them (`until_created_at`, `until_id`) and writes nothing to
  them; the flow worker notifies the range from WAITING until nobody in it waits
  (`finished_at`). A 100,000-person waitlist is answered in one read, and who
  leaves the waitlist or buys the product before their batch is not notified.
- **picked** (a quantity): the restock marks its oldest `quantity` NOTIFYING, so
  exactly they are notified whoever joins or leaves meanwhile (and a release
  before the ranges picks this way too: its restocks are carried on as they are).

Restocks of one product are made one at a time (a lock per product), and none
answers whom an earlier one still notifying answers: two at once never count the
same people. Whom a restock answers is written once, here (`_answered_by`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.database import Database
from service.storage.listening import notify as notify_listeners
from service.storage.models import Restock

# The flow worker listens here: a restock's first batch starts once it commits,
# not a polling pause later.
RESTOCKED = "marketing_restocked"


@dataclass(frozen=True)
class RestockView:
    id: uuid.UUID
    product_id: str
    variant_id: str
    product: dict[str, Any]
    picked: int
    created_at: datetime


def _answered_by(product: str, variant: str, until: tuple[str, str] | None = None) -> str:
    """SQL: the waiting subscription `s` is one a restock of `product` and `variant`
    answers (SQL expressions: a restock without a variant answers every one of the
    product's, one without a variant is answered by any), up to its last one, `until`
    (its `created_at` and `id`) when given. The one statement of the rule."""
    rule = (
        f"s.product_id = {product} AND s.state = 'WAITING'"
        f" AND ({variant} = '' OR s.variant_id IN ('', {variant}))"
    )
    return rule if until is None else f"{rule} AND (s.created_at, s.id) <= ({until[0]}, {until[1]})"


# A subscription `s` a restock of :product (and :variant) answers, up to its last one
# (:until_at, :until_id): for the flow worker's batches and the restock's end.
IN_RANGE = _answered_by(":product", ":variant", (":until_at", ":until_id"))
# Not answered by an earlier restock's range still being notified (`s` as above).
_NOT_ANSWERED_YET = f"""NOT EXISTS (
    SELECT 1 FROM marketing_restock r
    WHERE r.finished_at IS NULL AND r.until_id IS NOT NULL
      AND {_answered_by("r.product_id", "r.variant_id", ("r.until_created_at", "r.until_id"))})"""
# Whom a new restock answers, oldest first (through the index of the waiting).
_ANSWERABLE = f"""
    SELECT s.created_at, s.id FROM marketing_back_in_stock_subscription s
    WHERE {_answered_by(":product", ":variant")} AND {_NOT_ANSWERED_YET}
    ORDER BY s.created_at, s.id"""


def _range_of(rule: str) -> TextClause:
    """The last of the waiting subscriptions `rule` (over `s`) answers, and how many
    there are: the last by a backward scan of their index, the count by a scan of
    them alone. (A count over a window of them all, sorted for the last one, built
    a store of 100,000 rows on disk: 60 ms of the restock's reply, where the flow
    worker begins notifying once the restock commits.) The count's `s` is its own
    scan's, as `rule` names it."""
    return text(
        f"""
        SELECT s.created_at, s.id,
               (SELECT count(*) FROM marketing_back_in_stock_subscription s WHERE {rule})
        FROM marketing_back_in_stock_subscription s WHERE {rule}
        ORDER BY s.created_at DESC, s.id DESC
        LIMIT 1
        """
    )


# A range: the last of it and how many.
_RANGE = _range_of(f"{_answered_by(':product', ':variant')} AND {_NOT_ANSWERED_YET}")
# The same when no range of the product is open: nobody to pass over, so no look at
# the open ranges for each one. None can open meanwhile (only a restock opens one,
# under the product's lock), and each statement reads what was committed before it
# began (READ COMMITTED), so the range a restock before this one opened is seen.
_RANGE_NONE_OPEN = _range_of(_answered_by(":product", ":variant"))
_ANY_OPEN = text(
    "SELECT EXISTS (SELECT 1 FROM marketing_restock WHERE product_id = :product"
    " AND finished_at IS NULL AND until_id IS NOT NULL)"
)
# Picked: the oldest `quantity`, NOTIFYING with this restock.
_PICK = text(
    f"""
    UPDATE marketing_back_in_stock_subscription s
    SET state = 'NOTIFYING', restock_id = :restock
    WHERE s.state = 'WAITING' AND s.id IN (SELECT id FROM ({_ANSWERABLE} LIMIT :most) AS picked)
    """
)


async def notify(
    db: Database,
    *,
    product_id: str,
    variant_id: str,
    quantity: int | None,
    product: dict[str, Any],
    request_id: uuid.UUID | None,
    now: datetime,
) -> RestockView:
    """Record the restock with the waiting subscriptions it answers (see the
    module): the flow worker notifies them. A `request_id` already used returns
    that restock and answers no one."""
    async with db.transaction() as session:
        if request_id is not None:
            # The request's own lock: a retry racing its original waits for it.
            await _lock(session, str(request_id))
            earlier = await session.scalar(select(Restock).where(Restock.request_id == request_id))
            if earlier is not None:
                return _view(earlier)
        await _lock(session, f"restock:{product_id}")
        restock = Restock(
            id=uuid.uuid4(),
            product_id=product_id,
            variant_id=variant_id,
            quantity=quantity,
            product=product,
            picked=0,
            request_id=request_id,
            created_at=now,
            finished_at=now,  # as a range: picked ones are notified by themselves
        )
        params = {"product": product_id, "variant": variant_id, "restock": restock.id}
        if quantity is None:
            any_open = await session.scalar(_ANY_OPEN, params)
            answered = (
                await session.execute(_RANGE if any_open else _RANGE_NONE_OPEN, params)
            ).first()
            if answered is not None:
                until_at, until_id, restock.picked = answered
                restock.until_created_at, restock.until_id = until_at, until_id
                restock.finished_at = None
        session.add(restock)
        await session.flush()
        if quantity is not None:
            picked = await session.execute(_PICK, params | {"most": quantity})
            restock.picked = int(picked.rowcount or 0)  # type: ignore[attr-defined]
            await session.flush()
        if restock.picked:
            await notify_listeners(session, RESTOCKED, str(restock.id))
        return _view(restock)


async def _lock(session: AsyncSession, name: str) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})


def _view(restock: Restock) -> RestockView:
    return RestockView(
        restock.id,
        restock.product_id,
        restock.variant_id,
        restock.product,
        restock.picked,
        restock.created_at,
    )
