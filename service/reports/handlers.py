"""Metrics RPCs: requests to report use cases, figures back to messages."""

from __future__ import annotations

from datetime import timedelta

from marketing.v1 import common_pb2, metrics_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.conversions import optional_time, timestamp
from service.errors import Violations
from service.flows.names import flow_name, parse_flow_name
from service.reports import rules
from service.reports.figures import NANOS, Figures, conversions_rate
from service.reports.rules import ReportSettings
from service.storage.database import Database

# The numeric figures CompareCampaigns sets side by side.
COMPARED = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "unsubscribed",
    "open_rate",
    "click_rate",
    "conversion_rate",
    "conversions",
    "roi",
    "unsubscribe_rate",
)


class ReportHandlers:
    def __init__(self, db: Database, settings: ReportSettings, *, clock: Clock) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock

    async def campaign(
        self, request: pb.GetCampaignMetricsRequest
    ) -> pb.GetCampaignMetricsResponse:
        figures = await rules.campaign_metrics(self._db, request.campaign_id)
        return pb.GetCampaignMetricsResponse(
            metrics=self._campaign_message(request.campaign_id, figures)
        )

    async def compare(self, request: pb.CompareCampaignsRequest) -> pb.CompareCampaignsResponse:
        compared = await rules.compare_campaigns(self._db, list(request.campaign_ids))
        campaigns = [self._campaign_message(c, f) for c, f in compared]
        return pb.CompareCampaignsResponse(
            campaigns=campaigns, differences=[_difference(name, campaigns) for name in COMPARED]
        )

    async def flow(self, request: pb.GetFlowMetricsRequest) -> pb.GetFlowMetricsResponse:
        v = Violations()
        flow_id = parse_flow_name(v, "name", request.name)
        v.raise_if_any()
        report = await rules.flow_metrics(self._db, flow_id=flow_id, name=request.name)
        message = metrics_pb2.FlowMetrics(
            flow=flow_name(report.flow.id),
            figures=self._figures(report.figures),
            enrolled=report.enrolled,
            completed=report.completed,
            exited=report.exited,
            completion_rate=report.completion_rate,
            messages=[
                metrics_pb2.FlowMessageMetrics(message_id=m, figures=self._figures(f))
                for m, f in sorted(report.messages.items())
            ],
        )
        message.average_time_to_complete.FromTimedelta(report.average_to_complete)
        return pb.GetFlowMetricsResponse(metrics=message)

    async def dashboard(
        self, request: pb.GetDashboardMetricsRequest
    ) -> pb.GetDashboardMetricsResponse:
        start = optional_time(request, "start_time", "start_time")
        end = optional_time(request, "end_time", "end_time")
        board = await rules.dashboard(self._db, start, end, self._clock())
        return pb.GetDashboardMetricsResponse(
            metrics=metrics_pb2.DashboardMetrics(
                total_contacts=board.total_contacts,
                new_contacts=board.new_contacts,
                contact_growth=board.contact_growth,
                active_flows=board.active_flows,
                recent_campaigns=board.recent_campaigns,
                revenue_30_days=_money(board.revenue_30_days),
                top_campaigns=[
                    metrics_pb2.CampaignSummary(
                        campaign_id=c,
                        delivered=f.delivered,
                        open_rate=f.rate(f.opened),
                        click_rate=f.rate(f.clicked),
                        revenue=_money(f.revenue),
                    )
                    for c, f in board.top_campaigns
                ],
                top_flows=[
                    metrics_pb2.FlowSummary(
                        flow=flow_name(s.flow_id),
                        enrolled=s.enrolled,
                        conversions=s.figures.conversions,
                        revenue=_money(s.figures.revenue),
                    )
                    for s in board.top_flows
                ],
                contact_growth_trend=[
                    metrics_pb2.DataPoint(time=timestamp(day), value=count)
                    for day, count in board.trend
                ],
                start_time=timestamp(board.start),
                end_time=timestamp(board.end),
            )
        )

    def _campaign_message(self, campaign_id: str, f: Figures) -> metrics_pb2.CampaignMetrics:
        return metrics_pb2.CampaignMetrics(
            campaign_id=campaign_id,
            figures=self._figures(f),
            first_time=timestamp(f.first),
            last_time=timestamp(f.last),
        )

    def _figures(self, f: Figures) -> metrics_pb2.EngagementFigures:
        return metrics_pb2.EngagementFigures(
            sent=f.sent,
            delivered=f.delivered,
            opened=f.opened,
            clicked=f.clicked,
            bounced=f.bounced,
            unsubscribed=f.unsubscribed,
            open_rate=f.rate(f.opened),
            click_rate=f.rate(f.clicked),
            conversion_rate=conversions_rate(f),
            conversions=f.conversions,
            revenue=_money(f.revenue),
            roi=f.roi(self._settings.cost),
            unsubscribe_rate=f.rate(f.unsubscribed),
        )


def _difference(
    metric: str, campaigns: list[metrics_pb2.CampaignMetrics]
) -> metrics_pb2.MetricDifference:
    values = [(float(getattr(c.figures, metric)), c.campaign_id) for c in campaigns]
    best = max(values, key=lambda v: v[0])  # the first of equals, in the order asked
    worst = min(values, key=lambda v: v[0])
    return metrics_pb2.MetricDifference(
        metric=metric,
        best_campaign_id=best[1],
        best=best[0],
        worst_campaign_id=worst[1],
        worst=worst[0],
        spread=best[0] - worst[0],
    )


def _money(amounts: dict[str, int]) -> list[common_pb2.Money]:
    """Nanos per currency as Money (units and nanos of the same sign), by code."""
    money = []
    for currency, nanos in sorted(amounts.items()):
        sign = -1 if nanos < 0 else 1
        units, rest = divmod(abs(nanos), NANOS)
        money.append(
            common_pb2.Money(currency_code=currency, units=sign * units, nanos=sign * rest)
        )
    return money


def _whole_micros(value: timedelta) -> timedelta:
    return timedelta(microseconds=round(value / timedelta(microseconds=1)))
