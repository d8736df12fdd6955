"""Engagement figures and attributed revenue, from our own records: the
engagement the providers' webhooks reported (service.engagement), counted as
it is recorded, and the orders attributed to it (service.reports.attribution:
last touch).

Counts are of people (unique opens, unique clicks): a person is their email
digest, or for an engagement without an email the engagement itself. The
engagement table's trigger (migration 0013) records each person once per
figure of each campaign, flow and flow message (`marketing_engagement_reach`;
which figures a type counts in: `marketing_figures_of`) and adds the newly
reached to the counts (`marketing_engagement_figures`, a few shard rows a
scope), so a report sums a few rows instead of counting people."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from service.storage.models import Conversion, Engagement, EngagementFigures, EngagementReach

NANOS = 10**9  # money's smallest unit, as google.type.Money's nanos
CAMPAIGN, FLOW, FLOW_MESSAGE = "campaign", "flow", "flow_message"  # the scopes counted
FIGURE_NAMES = ("sent", "delivered", "opened", "clicked", "bounced", "unsubscribed")


@dataclass(frozen=True)
class Cost:
    """What one message costs (MARKETING_COST_PER_MESSAGE), for ROI."""

    nanos: int
    currency: str


@dataclass(frozen=True)
class OrderRange:
    """Orders placed from `start` up to (not including) `end`."""

    start: datetime
    end: datetime


@dataclass
class Figures:
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    unsubscribed: int = 0
    conversions: int = 0
    converted_people: int = 0
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> nanos
    first: Any = None
    last: Any = None
    # Messages sent, where a person may get several (a flow's); 0: one each (`sent`).
    messages_sent: int = 0

    def rate(self, count: int) -> float:
        """`count` / delivered * 100; 0 when nothing was delivered (never NaN)."""
        return count / self.delivered * 100 if self.delivered else 0.0

    def roi(self, cost: Cost | None) -> float:
        if cost is None or cost.nanos <= 0 or self.sent == 0:
            return 0.0
        spent = cost.nanos * (self.messages_sent or self.sent)
        return (self.revenue.get(cost.currency, 0) - spent) / spent * 100


def _counter_columns() -> list[Any]:
    sums = [func.sum(getattr(EngagementFigures, name)).label(name) for name in FIGURE_NAMES]
    return [
        *sums,
        func.min(EngagementFigures.first_at).label("first"),
        func.max(EngagementFigures.last_at).label("last"),
    ]


def _figures_of(row: Any) -> Figures:
    # Providers that report no deliveries (ActiveCampaign) have every sent
    # message that did not bounce counted as delivered.
    delivered = row.delivered if row.delivered else max(row.sent - row.bounced, 0)
    return Figures(
        sent=int(row.sent),
        delivered=int(delivered),
        opened=int(row.opened),
        clicked=int(row.clicked),
        bounced=int(row.bounced),
        unsubscribed=int(row.unsubscribed),
        first=row.first,
        last=row.last,
    )


@dataclass(frozen=True)
class FlowLinks:
    """Where a flow's messages are sent: its Klaviyo flow, its ActiveCampaign
    automation (either may be unset)."""

    klaviyo_flow_id: str
    automation_id: str

    def counted(self) -> ColumnElement[bool]:
        return self._at(EngagementFigures.provider, EngagementFigures.scope_id)

    def converted(self) -> ColumnElement[bool]:
        return self._at(Conversion.provider, Conversion.flow_id)

    def _at(self, provider: Any, flow_id: Any) -> ColumnElement[bool]:
        parts = [
            and_(provider == name, flow_id == linked)
            for name, linked in (
                ("klaviyo", self.klaviyo_flow_id),
                ("activecampaign", self.automation_id),
            )
            if linked
        ]
        return or_(*parts) if parts else false()


async def campaign_figures(
    session: AsyncSession, campaign_ids: Sequence[str], orders: OrderRange | None = None
) -> dict[str, Figures]:
    """Each campaign's figures (at any provider), and the orders (of `orders`
    only, when given) attributed to its messages."""
    ids = list(campaign_ids)
    found = await _counted(
        session,
        EngagementFigures.scope_id,
        and_(EngagementFigures.scope == CAMPAIGN, EngagementFigures.scope_id.in_(ids)),
    )
    await _add_conversions(
        session, found, Conversion.campaign_id, Conversion.campaign_id.in_(ids), orders
    )
    return found


async def flow_figures(
    session: AsyncSession, links: FlowLinks, orders: OrderRange | None = None
) -> Figures:
    """The figures of all of a flow's messages together, with their orders."""
    found = await _counted(
        session, literal_column("1"), and_(EngagementFigures.scope == FLOW, links.counted())
    )
    await _add_conversions(session, found, literal_column("1"), links.converted(), orders)
    return found.get(1, Figures())


async def flow_message_figures(session: AsyncSession, links: FlowLinks) -> dict[str, Figures]:
    """The figures of each of a flow's messages (by the provider's message id)."""
    found = await _counted(
        session,
        EngagementFigures.message_id,
        and_(EngagementFigures.scope == FLOW_MESSAGE, links.counted()),
    )
    where = and_(links.converted(), Conversion.message_id != "")
    await _add_conversions(session, found, Conversion.message_id, where, None)
    return found


async def campaigns_engaged(session: AsyncSession, start: datetime, end: datetime) -> list[str]:
    """The campaigns with engagement in [start, end): those whose span meets
    it, each checked on its own index (a span may straddle a quiet range)."""
    spans = (
        select(EngagementFigures.scope_id)
        .where(EngagementFigures.scope == CAMPAIGN)
        .group_by(EngagementFigures.scope_id)
        .having(
            func.min(EngagementFigures.first_at) < end, func.max(EngagementFigures.last_at) >= start
        )
        .subquery()
    )
    engaged = exists().where(
        Engagement.campaign_id == spans.c.scope_id,
        Engagement.occurred_at >= start,
        Engagement.occurred_at < end,
    )
    return list((await session.scalars(select(spans.c.scope_id).where(engaged))).all())


async def revenue_of(session: AsyncSession, orders: OrderRange) -> dict[str, int]:
    """The revenue of the orders in `orders` attributed to any message."""
    rows = await session.execute(
        select(Conversion.currency, func.sum(Conversion.amount_nanos))
        .where(*_in(orders), Conversion.currency != "")
        .group_by(Conversion.currency)
    )
    return {currency: int(amount) for currency, amount in rows}


async def main_currency(session: AsyncSession, orders: OrderRange) -> str:
    """The currency of most of the attributed orders in `orders` ("" for none)."""
    return str(
        await session.scalar(
            select(Conversion.currency)
            .where(*_in(orders), Conversion.currency != "")
            .group_by(Conversion.currency)
            .order_by(func.count().desc(), Conversion.currency)
            .limit(1)
        )
        or ""
    )


async def forget_person(session: AsyncSession, key: str) -> None:
    """Erasure: the person's place in the counts stays, without who they were."""
    await session.execute(
        update(EngagementReach)
        .where(EngagementReach.person == key)
        .values(person=func.concat("erased:", func.gen_random_uuid()))
    )


async def _counted(
    session: AsyncSession,
    key: ColumnElement[Any] | InstrumentedAttribute[Any],
    where: ColumnElement[bool],
) -> dict[Any, Figures]:
    rows = await session.execute(
        select(key.label("k"), *_counter_columns()).where(where).group_by(key)
    )
    return {row.k: _figures_of(row) for row in rows}


def _in(orders: OrderRange) -> list[ColumnElement[bool]]:
    return [Conversion.ordered_at >= orders.start, Conversion.ordered_at < orders.end]


async def _add_conversions(
    session: AsyncSession,
    found: dict[Any, Figures],
    key: ColumnElement[Any] | InstrumentedAttribute[Any],
    where: ColumnElement[bool],
    orders: OrderRange | None,
) -> None:
    """Add to each group the orders attributed to one of its messages
    (`marketing_conversion`, kept by service.reports.attribution), summed by
    PostgreSQL: per group (orders, people) and per group and currency (revenue)."""
    if not found:
        return
    in_range = [] if orders is None else _in(orders)
    k = key.label("k")
    rows = await session.execute(
        select(
            k,
            Conversion.currency,
            func.grouping(Conversion.currency).label("whole"),
            func.count().label("orders"),
            func.count(func.distinct(Conversion.contact_key)).label("people"),
            func.sum(Conversion.amount_nanos).label("amount"),
        )
        .where(where, *in_range)
        .group_by(func.grouping_sets(tuple_(k, Conversion.currency), tuple_(k)))
    )
    for row in rows:
        figures = found.get(row.k)
        if figures is None:
            continue
        if row.whole:
            figures.conversions, figures.converted_people = int(row.orders), int(row.people)
        elif row.currency:
            figures.revenue[row.currency] = int(row.amount)


def conversions_rate(f: Figures) -> float:
    return f.rate(f.converted_people)
