"""Campaign, flow and dashboard metrics (the seed's CampaignManager analytics),
read from our own records: engagement from the providers' webhooks, orders
from the event log (service.reports.figures), enrolments from our flows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import NotFoundError, Violations
from service.flows.definitions import FlowDefinition, State
from service.flows.rules import get_flow
from service.reports.contact_days import ContactDays
from service.reports.figures import (
    NANOS,
    Cost,
    Figures,
    FlowLinks,
    OrderRange,
    campaign_figures,
    campaigns_engaged,
    flow_figures,
    flow_message_figures,
    main_currency,
    revenue_of,
)
from service.storage.database import Database
from service.storage.models import Enrolment, Flow

MAX_ID = 128
MIN_COMPARED, MAX_COMPARED = 2, 10
MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=30)
REVENUE_PERIOD = timedelta(days=30)
EARLIEST = datetime.min.replace(tzinfo=UTC)
TOP = 5


@dataclass(frozen=True)
class ReportSettings:
    cost: Cost | None = None  # MARKETING_COST_PER_MESSAGE


DEFAULT_REPORT_SETTINGS = ReportSettings()


def report_settings(cost_per_message: str) -> ReportSettings:
    """From the settings: a cost such as "0.002 EUR"."""
    cost = None
    if cost_per_message:
        amount, currency = cost_per_message.split(" ")
        cost = Cost(int(Decimal(amount) * NANOS), currency)
    return ReportSettings(cost)


@dataclass
class FlowReport:
    flow: FlowDefinition
    figures: Figures
    enrolled: int
    completed: int
    exited: int
    average_to_complete: timedelta
    messages: dict[str, Figures]

    @property
    def completion_rate(self) -> float:
        return self.completed / self.enrolled * 100 if self.enrolled else 0.0


@dataclass
class FlowSummary:
    flow_id: str
    enrolled: int
    figures: Figures


@dataclass
class Dashboard:
    start: datetime
    end: datetime
    total_contacts: int
    new_contacts: int
    contacts_before: int
    active_flows: int
    recent_campaigns: int
    revenue_30_days: dict[str, int]
    top_campaigns: list[tuple[str, Figures]]
    top_flows: list[FlowSummary]
    trend: list[tuple[datetime, int]] = field(default_factory=list)

    @property
    def contact_growth(self) -> float:
        return self.new_contacts / self.contacts_before * 100 if self.contacts_before else 0.0


def check_campaign_id(v: Violations, path: str, campaign_id: str) -> None:
    if not campaign_id or len(campaign_id) > MAX_ID or "\x00" in campaign_id:
        v.add(path, "INVALID_ID", f"a provider campaign id of 1 to {MAX_ID} characters")


async def campaign_metrics(db: Database, campaign_id: str) -> Figures:
    v = Violations()
    check_campaign_id(v, "campaign_id", campaign_id)
    v.raise_if_any()
    async with db.transaction() as session:
        figures = (await campaign_figures(session, [campaign_id])).get(campaign_id, Figures())
    if figures.first is None:
        raise NotFoundError(resource_type="campaign", resource_name=campaign_id)
    return figures


async def compare_campaigns(db: Database, campaign_ids: list[str]) -> list[tuple[str, Figures]]:
    v = Violations()
    if not MIN_COMPARED <= len(campaign_ids) <= MAX_COMPARED:
        v.add("campaign_ids", "OUT_OF_RANGE", f"{MIN_COMPARED} to {MAX_COMPARED} campaign ids")
    for index, campaign_id in enumerate(campaign_ids):
        check_campaign_id(v, f"campaign_ids[{index}]", campaign_id)
        if campaign_id in campaign_ids[:index]:
            v.add(f"campaign_ids[{index}]", "DUPLICATE", "each campaign once")
    v.raise_if_any()
    async with db.transaction() as session:
        found = await campaign_figures(session, campaign_ids)
    for campaign_id in campaign_ids:
        if campaign_id not in found:
            raise NotFoundError(resource_type="campaign", resource_name=campaign_id)
    return [(campaign_id, found[campaign_id]) for campaign_id in campaign_ids]


async def flow_metrics(db: Database, *, flow_id: str, name: str) -> FlowReport:
    flow = await get_flow(db, flow_id=flow_id, name=name)
    links = FlowLinks(flow.provider.klaviyo_flow_id, flow.provider.activecampaign_automation_id)
    async with db.transaction() as session:
        enrolled, completed, exited, average = (
            await session.execute(
                select(
                    func.count().filter(Enrolment.state != State.REJECTED),
                    func.count().filter(Enrolment.state == State.COMPLETED),
                    func.count().filter(Enrolment.state == State.EXITED),
                    func.avg(Enrolment.ended_at - Enrolment.created_at).filter(
                        Enrolment.state == State.COMPLETED
                    ),
                ).where(Enrolment.flow_id == flow.id)
            )
        ).one()
        figures = await flow_figures(session, links)
        messages = await flow_message_figures(session, links)
    # ROI's cost: each message to each person (the flow's `sent` counts people).
    figures.messages_sent = sum(m.sent for m in messages.values())
    return FlowReport(flow, figures, enrolled, completed, exited, average or timedelta(0), messages)


def dashboard_range(
    v: Violations, start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The range asked, or the 30 days up to now."""
    end = end or now
    start = start or _back(end, DEFAULT_RANGE)
    if start >= end:
        v.add("start_time", "OUT_OF_RANGE", "must be before end_time")
    elif end - start > MAX_RANGE:
        v.add("end_time", "OUT_OF_RANGE", f"a range of at most {MAX_RANGE.days} days")
    return start, end


def _back(end: datetime, span: timedelta) -> datetime:
    """`end - span`, or the earliest time there is (a range near year 1)."""
    return end - span if end - EARLIEST > span else EARLIEST


async def dashboard(
    db: Database, start: datetime | None, end: datetime | None, now: datetime
) -> Dashboard:
    v = Violations()
    start, end = dashboard_range(v, start, end, now)
    v.raise_if_any()
    async with db.transaction() as session:
        contacts = await ContactDays.read(session)
        total = contacts.total()
        new = await contacts.created(start, end)
        before = await contacts.created(EARLIEST, start)
        active_flows = await session.scalar(
            select(func.count(func.distinct(Enrolment.flow_id)))
            .join(Flow, Flow.id == Enrolment.flow_id)
            .where(Enrolment.state == State.ACTIVE, Flow.live)
        )
        engaged = await campaigns_engaged(session, start, end)
        campaigns = await campaign_figures(session, engaged, OrderRange(start, end))
        revenue = await revenue_of(session, OrderRange(_back(end, REVENUE_PERIOD), end))
        top_flows = await _top_flows(session, start, end)
        trend = await _trend(contacts, start, end)
        main = await main_currency(session, OrderRange(start, end))
    top = _top_campaigns(campaigns, main)
    return Dashboard(
        start,
        end,
        total,
        new,
        before,
        int(active_flows or 0),
        len(campaigns),
        revenue,
        top,
        top_flows,
        trend,
    )


def _top_campaigns(campaigns: dict[str, Figures], main: str) -> list[tuple[str, Figures]]:
    """By revenue in `main`, the currency of most orders (amounts in different
    currencies are not added), then attributed orders, then deliveries."""
    ranked = sorted(
        campaigns.items(),
        key=lambda kv: (-kv[1].revenue.get(main, 0), -kv[1].conversions, -kv[1].delivered, kv[0]),
    )
    return ranked[:TOP]


async def _top_flows(session: AsyncSession, start: datetime, end: datetime) -> list[FlowSummary]:
    rows = await session.execute(
        select(Flow, func.count(Enrolment.id).label("enrolled"))
        .join(Enrolment, Enrolment.flow_id == Flow.id)
        .where(
            Enrolment.state != State.REJECTED,
            Enrolment.created_at >= start,
            Enrolment.created_at < end,
        )
        .group_by(Flow.id)
        .order_by(literal_column("enrolled").desc(), Flow.id)
        .limit(TOP)
    )
    summaries = []
    for flow, enrolled in rows.all():
        links = FlowLinks(flow.klaviyo_flow_id, flow.activecampaign_automation_id)
        figures = await flow_figures(session, links, OrderRange(start, end))
        summaries.append(FlowSummary(flow.id, enrolled, figures))
    return summaries


async def _trend(
    contacts: ContactDays, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """New contacts per UTC day of the range, days without any included."""
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    current = first
    while current < end:
        days.append((current, await contacts.created_on(current.date(), start, end)))
        current += timedelta(days=1)
    return days
