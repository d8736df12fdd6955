"""Campaign, flow and dashboard metrics over gRPC against a real PostgreSQL:
engagement recorded as the providers' webhooks report it, orders tracked as
events, and each figure checked against its definition (Property 26,
attribution, revenue per currency, enrolment figures)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing.v1 import flow_pb2
from marketing.v1 import service_pb2 as pb

from service.engagement.rules import Reported, record
from service.reports.figures import Cost, Figures
from service.storage.database import Database
from tests.builders import money, placed_order, ts, upsert
from tests.harness import field_violations, unique_email
from tests.service.reports.settle import settle_attribution

T = bus_pb2.EngagementType


@pytest.fixture(scope="module")
def db(database_url: str, loop: asyncio.AbstractEventLoop) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    loop.run_until_complete(database.close())


def _report(loop, db: Database, *engagements: bus_pb2.Engagement) -> None:
    async def run() -> None:
        async with db.transaction() as session:
            now = datetime.now(UTC)
            await record(session, [Reported(e, now) for e in engagements], now)

    loop.run_until_complete(run())


def _touch(email: str, type_: int, at: datetime, **fields: str) -> bus_pb2.Engagement:
    return bus_pb2.Engagement(
        provider=fields.pop("provider", "klaviyo"),
        external_id=uuid.uuid4().hex,
        type=type_,  # type: ignore[arg-type]
        email=email,
        occur_time=ts(at),
        **fields,
    )


def _order(stub, email: str, at: datetime, units: int, currency: str = "EUR") -> None:
    event = placed_order(email, order_id=uuid.uuid4().hex, occur_time=ts(at))
    event.placed_order.order.total.CopyFrom(money(units, currency))
    stub.TrackEvent(pb.TrackEventRequest(event=event))


def _campaign(stub, campaign: str):
    return stub.GetCampaignMetrics(pb.GetCampaignMetricsRequest(campaign_id=campaign)).metrics


def _attributed(loop, db: Database) -> None:
    """Until the attribution worker has taken every person queued."""
    loop.run_until_complete(settle_attribution(db))


def test_campaign_figures_count_people_and_attribute_orders_to_the_last_click(
    stub, loop, db
) -> None:
    campaign, other = f"c-{uuid.uuid4().hex[:8]}", f"c-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    sent = now - timedelta(days=2)
    people = [unique_email() for _ in range(4)]
    for email in people:
        stub.UpsertContact(upsert(email))
    _report(
        loop,
        db,
        *[_touch(e, T.ENGAGEMENT_TYPE_DELIVERED, sent, campaign_id=campaign) for e in people],
        _touch(people[0], T.ENGAGEMENT_TYPE_OPENED, sent, campaign_id=campaign),
        _touch(people[0], T.ENGAGEMENT_TYPE_OPENED, sent, campaign_id=campaign),  # same person
        _touch(people[1], T.ENGAGEMENT_TYPE_OPENED, sent, campaign_id=campaign),
        _touch(people[1], T.ENGAGEMENT_TYPE_CLICKED, sent, campaign_id=campaign),
        _touch(people[2], T.ENGAGEMENT_TYPE_UNSUBSCRIBED, sent, campaign_id=campaign),
        # people[3] clicked another campaign later: their order is that one's.
        _touch(people[3], T.ENGAGEMENT_TYPE_OPENED, sent, campaign_id=campaign),
        _touch(people[3], T.ENGAGEMENT_TYPE_CLICKED, now - timedelta(days=1), campaign_id=other),
    )
    _order(stub, people[1], now - timedelta(hours=1), 30)
    _order(stub, people[1], now - timedelta(minutes=30), 5, "USD")
    _order(stub, people[0], sent - timedelta(hours=1), 99)  # before the message: not its
    _order(stub, people[3], now - timedelta(hours=2), 70)
    _attributed(loop, db)
    f = _campaign(stub, campaign).figures
    assert (f.sent, f.delivered, f.opened, f.clicked, f.unsubscribed) == (4, 4, 3, 1, 1)
    assert (f.open_rate, f.click_rate, f.unsubscribe_rate) == (75.0, 25.0, 25.0)
    assert (f.conversions, f.conversion_rate) == (2, 25.0)
    assert [(m.currency_code, m.units) for m in f.revenue] == [("EUR", 30), ("USD", 5)]
    g = _campaign(stub, other).figures
    assert (g.delivered, g.conversions, [m.units for m in g.revenue]) == (0, 1, [70])
    assert (g.open_rate, g.click_rate) == (0.0, 0.0)  # nothing delivered: 0, never NaN


def test_an_order_after_the_attribution_window_is_no_conversion(stub, loop, db) -> None:
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    email = unique_email()
    clicked = datetime.now(UTC) - timedelta(days=9)
    _report(
        loop,
        db,
        _touch(email, T.ENGAGEMENT_TYPE_DELIVERED, clicked, campaign_id=campaign),
        _touch(email, T.ENGAGEMENT_TYPE_CLICKED, clicked, campaign_id=campaign),
    )
    _order(stub, email, clicked + timedelta(days=6), 10)  # the window is 5 days
    _attributed(loop, db)
    assert _campaign(stub, campaign).figures.conversions == 0


def test_activecampaign_deliveries_are_the_sent_that_did_not_bounce(stub, loop, db) -> None:
    campaign = f"ac-{uuid.uuid4().hex[:6]}"
    at = datetime.now(UTC)
    people = [unique_email() for _ in range(5)]
    _report(
        loop,
        db,
        *[
            _touch(e, T.ENGAGEMENT_TYPE_SENT, at, campaign_id=campaign, provider="activecampaign")
            for e in people
        ],
        _touch(
            people[0],
            T.ENGAGEMENT_TYPE_BOUNCED,
            at,
            campaign_id=campaign,
            provider="activecampaign",
            bounce_type="soft",
        ),
        _touch(
            people[1], T.ENGAGEMENT_TYPE_OPENED, at, campaign_id=campaign, provider="activecampaign"
        ),
    )
    f = _campaign(stub, campaign).figures
    assert (f.sent, f.delivered, f.bounced, f.opened, f.open_rate) == (5, 4, 1, 1, 25.0)


def test_unknown_and_bad_campaigns_are_refused(stub) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        _campaign(stub, "never-sent")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as bad:
        _campaign(stub, "")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "campaign_id" in field_violations(bad.value)


def test_compare_campaigns_names_the_best_and_worst_of_each_figure(stub, loop, db) -> None:
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    at = datetime.now(UTC)
    x, y = unique_email(), unique_email()
    _report(
        loop,
        db,
        _touch(x, T.ENGAGEMENT_TYPE_DELIVERED, at, campaign_id=a),
        _touch(x, T.ENGAGEMENT_TYPE_OPENED, at, campaign_id=a),
        _touch(x, T.ENGAGEMENT_TYPE_DELIVERED, at, campaign_id=b),
        _touch(y, T.ENGAGEMENT_TYPE_DELIVERED, at, campaign_id=b),
    )
    reply = stub.CompareCampaigns(pb.CompareCampaignsRequest(campaign_ids=[a, b]))
    assert [c.campaign_id for c in reply.campaigns] == [a, b]
    open_rate = next(d for d in reply.differences if d.metric == "open_rate")
    assert (open_rate.best_campaign_id, open_rate.best, open_rate.worst, open_rate.spread) == (
        a,
        100.0,
        0.0,
        100.0,
    )
    with pytest.raises(grpc.RpcError) as bad:
        stub.CompareCampaigns(pb.CompareCampaignsRequest(campaign_ids=[a, a]))
    assert "campaign_ids[1]" in field_violations(bad.value)
    with pytest.raises(grpc.RpcError) as alone:
        stub.CompareCampaigns(pb.CompareCampaignsRequest(campaign_ids=[a]))
    assert "campaign_ids" in field_violations(alone.value)


def test_flow_metrics_join_our_enrolments_and_the_linked_flow_messages(stub, loop, db) -> None:
    klaviyo_flow = f"KF{uuid.uuid4().hex[:6]}"
    stub.UpdateFlow(
        pb.UpdateFlowRequest(
            flow=flow_pb2.Flow(
                name="flows/post-purchase",
                provider=flow_pb2.ProviderFlow(
                    klaviyo_start_metric="Marketing Post Purchase",
                    klaviyo_flow_id=klaviyo_flow,
                ),
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["provider"]),
        )
    )
    at = datetime.now(UTC)
    email = unique_email()
    _report(
        loop,
        db,
        _touch(email, T.ENGAGEMENT_TYPE_DELIVERED, at, flow_id=klaviyo_flow, message_id="m1"),
        _touch(email, T.ENGAGEMENT_TYPE_OPENED, at, flow_id=klaviyo_flow, message_id="m1"),
        _touch(email, T.ENGAGEMENT_TYPE_DELIVERED, at, flow_id=klaviyo_flow, message_id="m2"),
    )
    metrics = stub.GetFlowMetrics(pb.GetFlowMetricsRequest(name="flows/post-purchase")).metrics
    assert metrics.flow == "flows/post-purchase"
    assert (metrics.figures.delivered, metrics.figures.opened) == (1, 1)
    assert [(m.message_id, m.figures.open_rate) for m in metrics.messages] == [
        ("m1", 100.0),
        ("m2", 0.0),
    ]
    assert metrics.enrolled >= metrics.completed + metrics.exited
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetFlowMetrics(pb.GetFlowMetricsRequest(name="flows/no-such-flow"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_the_dashboard_counts_contacts_and_a_day_per_point(stub) -> None:
    end = datetime.now(UTC)
    start = end - timedelta(days=7)
    stub.UpsertContact(upsert(unique_email()))
    board = stub.GetDashboardMetrics(
        pb.GetDashboardMetricsRequest(start_time=ts(start), end_time=ts(end))
    ).metrics
    assert board.total_contacts >= board.new_contacts >= 1
    assert len(board.contact_growth_trend) == 8  # the 7 days reach into an eighth UTC day
    assert sum(p.value for p in board.contact_growth_trend) == board.new_contacts
    with pytest.raises(grpc.RpcError) as bad:
        stub.GetDashboardMetrics(
            pb.GetDashboardMetricsRequest(start_time=ts(end), end_time=ts(start))
        )
    assert "start_time" in field_violations(bad.value)


# **Feature: marketing-automation, Property 26: Campaign metrics calculated correctly**
@settings(max_examples=200, deadline=None)
@given(
    delivered=st.integers(0, 10**6),
    opened_share=st.floats(0, 1),
    clicked_share=st.floats(0, 1),
)
def test_open_and_click_rates_are_shares_of_deliveries(
    delivered: int, opened_share: float, clicked_share: float
) -> None:
    opened, clicked = int(delivered * opened_share), int(delivered * clicked_share)
    f = Figures(sent=delivered, delivered=delivered, opened=opened, clicked=clicked)
    if delivered == 0:
        assert f.rate(f.opened) == f.rate(f.clicked) == 0.0
    else:
        assert f.rate(f.opened) == opened / delivered * 100
        assert f.rate(f.clicked) == clicked / delivered * 100
    assert f.roi(None) == 0.0
    assert f.roi(Cost(0, "EUR")) == 0.0


def test_roi_costs_every_message_a_flow_sent() -> None:
    eur = 10**9
    campaign = Figures(sent=100, revenue={"EUR": 30 * eur})
    assert campaign.roi(Cost(eur // 10, "EUR")) == 200.0  # 10 EUR spent on 100 people
    flow = Figures(sent=100, messages_sent=300, revenue={"EUR": 30 * eur})
    assert flow.roi(Cost(eur // 10, "EUR")) == 0.0  # three messages each: 30 EUR spent
    assert flow.roi(Cost(eur // 10, "USD")) == -100.0  # no revenue in the cost's currency


def test_a_dashboard_time_out_of_range_names_the_field(stub) -> None:
    bad = timestamp_pb2.Timestamp(seconds=1, nanos=-5)
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetDashboardMetrics(pb.GetDashboardMetricsRequest(start_time=bad))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "start_time" in field_violations(refused.value)
    early = timestamp_pb2.Timestamp(seconds=-62135596800 + 86400)  # 0001-01-02
    board = stub.GetDashboardMetrics(pb.GetDashboardMetricsRequest(end_time=early)).metrics
    assert board.new_contacts == 0


def test_erasing_a_buyer_removes_their_orders_and_keeps_their_engagement_counted(
    stub, loop, db
) -> None:
    campaign = f"c-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    email = unique_email()
    contact = stub.UpsertContact(upsert(email)).contact
    _report(
        loop,
        db,
        _touch(email, T.ENGAGEMENT_TYPE_DELIVERED, now - timedelta(hours=3), campaign_id=campaign),
        _touch(email, T.ENGAGEMENT_TYPE_CLICKED, now - timedelta(hours=2), campaign_id=campaign),
    )
    _order(stub, email, now - timedelta(hours=1), 40)
    _attributed(loop, db)
    before = _campaign(stub, campaign).figures
    assert (before.delivered, before.clicked, before.conversions) == (1, 1, 1)
    stub.DeleteContact(pb.DeleteContactRequest(name=contact.name))
    _attributed(loop, db)
    after = _campaign(stub, campaign).figures
    assert (after.delivered, after.clicked) == (1, 1)  # counted, without who
    assert (after.conversions, list(after.revenue)) == (0, [])  # the order is gone
