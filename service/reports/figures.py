"""Engagement figures and attributed revenue, computed from our own records:
the engagement the providers' webhooks reported (service.engagement) and the
orders attributed to it (service.reports.attribution: last touch).

Counts are of people (unique opens, unique clicks): a person is their email
digest, or for an engagement without an email the engagement itself."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from service.storage.models import Conversion, Engagement

NANOS = 10**9  # money's smallest unit, as google.type.Money's nanos
_PERSON = func.coalesce(Engagement.email_sha256, "x:" + Engagement.external_id)


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

    def rate(self, count: int) -> float:
        """`count` / delivered * 100; 0 when nothing was delivered (never NaN)."""
        return count / self.delivered * 100 if self.delivered else 0.0

    def roi(self, cost: Cost | None) -> float:
        if cost is None or cost.nanos <= 0 or self.sent == 0:
            return 0.0
        spent = cost.nanos * self.sent
        return (self.revenue.get(cost.currency, 0) - spent) / spent * 100


def _figure_columns() -> list[Any]:
    def people(*types: str) -> Any:
        return func.count(func.distinct(_PERSON)).filter(Engagement.type.in_(types))

    return [
        people("sent", "delivered", "bounced").label("sent"),
        people("delivered").label("delivered"),
        people("opened").label("opened"),
        people("clicked").label("clicked"),
        people("bounced").label("bounced"),
        people("unsubscribed", "spam_complaint").label("unsubscribed"),
        func.min(Engagement.occurred_at).label("first"),
        func.max(Engagement.occurred_at).label("last"),
    ]


def _figures_of(row: Any) -> Figures:
    # Providers that report no deliveries (ActiveCampaign) have every sent
    # message that did not bounce counted as delivered.
    delivered = row.delivered if row.delivered else max(row.sent - row.bounced, 0)
    return Figures(
        sent=row.sent,
        delivered=delivered,
        opened=row.opened,
        clicked=row.clicked,
        bounced=row.bounced,
        unsubscribed=row.unsubscribed,
        first=row.first,
        last=row.last,
    )


async def figures_by(
    session: AsyncSession,
    key: ColumnElement[Any] | InstrumentedAttribute[Any],
    where: ColumnElement[bool],
    orders: OrderRange | None = None,
) -> dict[Any, Figures]:
    """Figures grouped by `key` (a campaign, a message) over the engagement
    `where` picks, with the orders (of `orders` only, when given) attributed
    to each."""
    rows = await session.execute(
        select(key.label("k"), *_figure_columns()).where(where).group_by(key)
    )
    found = {row.k: _figures_of(row) for row in rows}
    if found:
        await _attribute(session, found, key, where, orders)
    return found


async def revenue_of(session: AsyncSession, orders: OrderRange) -> dict[str, int]:
    """The revenue of the orders in `orders` attributed to any message."""
    rows = await session.execute(
        select(Conversion.currency, func.sum(Conversion.amount_nanos))
        .where(
            Conversion.ordered_at >= orders.start,
            Conversion.ordered_at < orders.end,
            Conversion.currency != "",
        )
        .group_by(Conversion.currency)
    )
    return {currency: int(amount) for currency, amount in rows}


async def figures_of(
    session: AsyncSession,
    where: ColumnElement[bool],
    orders: OrderRange | None = None,
) -> Figures:
    """The figures of all the engagement `where` picks, as one."""
    grouped = await figures_by(session, literal_column("1"), where, orders)
    return grouped.get(1, Figures())


async def _attribute(
    session: AsyncSession,
    found: dict[Any, Figures],
    key: ColumnElement[Any] | InstrumentedAttribute[Any],
    where: ColumnElement[bool],
    orders: OrderRange | None,
) -> None:
    """Add to each group the orders attributed to one of its engagements
    (`marketing_conversion`, kept by service.reports.attribution)."""
    in_range = (
        []
        if orders is None
        else [Conversion.ordered_at >= orders.start, Conversion.ordered_at < orders.end]
    )
    placed = await session.execute(
        select(key.label("k"), Conversion.contact_key, Conversion.currency, Conversion.amount_nanos)
        .join(Engagement, Engagement.id == Conversion.engagement_id)
        .where(where, *in_range)
    )
    people: defaultdict[Any, set[str]] = defaultdict(set)
    for k, person, currency, amount in placed:
        figures = found.get(k)
        if figures is None:
            continue
        figures.conversions += 1
        people[k].add(person)
        if currency:
            figures.revenue[currency] = figures.revenue.get(currency, 0) + int(amount)
    for k, who in people.items():
        found[k].converted_people = len(who)


def conversions_rate(f: Figures) -> float:
    return f.rate(f.converted_people)


def campaign_filter(campaign_ids: Sequence[str]) -> ColumnElement[bool]:
    return Engagement.campaign_id.in_(list(campaign_ids))


def flow_filter(klaviyo_flow_id: str, automation_id: str) -> ColumnElement[bool]:
    """The engagement with a flow's messages: at Klaviyo, of its linked flow;
    at ActiveCampaign, of its automation. Nothing when neither is linked."""
    parts = []
    if klaviyo_flow_id:
        parts.append(and_(Engagement.provider == "klaviyo", Engagement.flow_id == klaviyo_flow_id))
    if automation_id:
        parts.append(
            and_(Engagement.provider == "activecampaign", Engagement.flow_id == automation_id)
        )
    if not parts:
        return Engagement.id.is_(None)  # matches no row
    return or_(*parts)
