"""The provider's campaigns and flows, cached, against a real PostgreSQL and nats-server:
the catalogue recorder keeps what the dispatcher's refreshes publish (figures kept when a
refresh read none, what a refresh no longer lists forgotten, an older refresh dropped, a
refresh in several parts), and ListProviderCampaigns, GetProviderCampaign and
ListProviderFlows answer from it, with the cache's age and bad requests refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from marketing.bus.v1 import bus_pb2
from marketing.v1 import flow_pb2 as fp
from marketing.v1 import provider_catalogue_pb2 as pc
from marketing.v1 import service_pb2 as pb
from marketing_runtime import topology
from marketing_runtime.envelope import MSG_ID_HEADER
from marketing_runtime.timestamps import to_timestamp

from service.provider_catalogue.recording import record
from tests.harness import (
    ServiceHarness,
    assert_eventually,
    field_violations,
    own_database,
)
from tests.processes import NatsServer

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
EMAIL, SMS = bus_pb2.CATALOGUE_CHANNEL_EMAIL, bus_pb2.CATALOGUE_CHANNEL_SMS
SENT, DRAFT = bus_pb2.CATALOGUE_STATUS_SENT, bus_pb2.CATALOGUE_STATUS_DRAFT
LIVE = bus_pb2.CATALOGUE_STATUS_SENDING


@pytest.fixture(scope="module")
def service(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceHarness]:
    """A service of its own, on a nats-server of its own (the catalogue consumer is one
    durable: another service on the same server could take these messages)."""
    server = NatsServer(Path(tmp_path_factory.mktemp("nats-catalogue")))
    server.start()
    try:
        with (
            own_database(database_url, "catalogue") as url,
            ServiceHarness.start(url, server.url) as running,
        ):
            yield running
    finally:
        server.stop()


@pytest.fixture
def stub(service: ServiceHarness):
    service.sql("DELETE FROM marketing_campaign_cache")
    return service.stub


def _figures(**statistics: float) -> bus_pb2.ProviderFigures:
    return bus_pb2.ProviderFigures(
        source="campaign-values-report", timeframe="last_365_days", statistics=statistics
    )


def _campaign(
    campaign_id: str,
    *,
    channel: int = EMAIL,
    status: int = SENT,
    figures: bus_pb2.ProviderFigures | None = None,
) -> bus_pb2.ProviderCampaign:
    campaign = bus_pb2.ProviderCampaign(
        id=campaign_id,
        name=f"Campaign {campaign_id}",
        channel=channel,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        provider_status="Sent" if status == SENT else "Draft",
        send_time=to_timestamp(T0 - timedelta(days=1)),
    )
    if figures is not None:
        campaign.figures.CopyFrom(figures)
    return campaign


def _flow(flow_id: str, status: int = LIVE) -> bus_pb2.ProviderFlowInfo:
    return bus_pb2.ProviderFlowInfo(
        id=flow_id,
        name=f"Flow {flow_id}",
        status=status,  # type: ignore[arg-type]
        provider_status="live",
        trigger_type="Metric",
        figures=bus_pb2.ProviderFigures(
            source="flow-values-report", timeframe="last_365_days", statistics={"recipients": 3}
        ),
    )


def _catalogue(
    at: datetime,
    campaigns: list[bus_pb2.ProviderCampaign],
    flows: list[bus_pb2.ProviderFlowInfo] = (),  # type: ignore[assignment]
    *,
    provider: str = "klaviyo",
    part: int = 0,
    parts: int = 1,
) -> bus_pb2.ProviderCatalogue:
    return bus_pb2.ProviderCatalogue(
        provider=provider,
        fetch_time=to_timestamp(at),
        campaigns=campaigns,
        flows=flows,
        part=part,
        parts=parts,
    )


def _record(service: ServiceHarness, *catalogues: bus_pb2.ProviderCatalogue) -> list[bool]:
    async def go() -> list[bool]:
        async with service.db.transaction() as session:
            return [await record(session, catalogue) for catalogue in catalogues]

    return service.run(go())


def _campaigns(stub, **request: Any) -> pb.ListProviderCampaignsResponse:
    return stub.ListProviderCampaigns(pb.ListProviderCampaignsRequest(**request))


def _ids(response: pb.ListProviderCampaignsResponse) -> list[str]:
    return [c.external_id for c in response.campaigns]


def test_a_refresh_published_on_the_bus_is_recorded_and_read_back(service, stub) -> None:
    """The recorder (the service's consumer of marketing.results.catalogue) records it."""
    catalogue = _catalogue(
        T0,
        [_campaign("01A", figures=_figures(recipients=100, delivered=98, opens_unique=40))],
        [_flow("XyZ123")],
    )

    async def publish() -> None:
        assert service.bus is not None and service.bus.js is not None
        headers = {MSG_ID_HEADER: "catalogue.klaviyo.test.0"}
        await service.bus.js.publish(
            topology.CATALOGUE_SUBJECT, catalogue.SerializeToString(), headers=headers
        )

    service.run(publish())
    listed = assert_eventually(lambda: _campaigns(stub).campaigns)
    (campaign,) = listed
    assert campaign.name == "providerCampaigns/01A"
    assert (campaign.display_name, campaign.provider) == ("Campaign 01A", "klaviyo")
    assert campaign.type == pc.ProviderCampaign.TYPE_EMAIL
    assert campaign.status == pc.ProviderCampaign.STATUS_SENT
    assert campaign.provider_status == "Sent"
    assert campaign.send_time.ToDatetime(tzinfo=UTC) == T0 - timedelta(days=1)
    assert campaign.fetch_time.ToDatetime(tzinfo=UTC) == T0
    assert dict(campaign.figures.statistics) == {
        "recipients": 100.0,
        "delivered": 98.0,
        "opens_unique": 40.0,
    }
    assert (campaign.figures.source, campaign.figures.timeframe) == (
        "campaign-values-report",
        "last_365_days",
    )
    assert campaign.figures.fetch_time.ToDatetime(tzinfo=UTC) == T0
    (flow,) = stub.ListProviderFlows(pb.ListProviderFlowsRequest()).flows
    assert (flow.name, flow.status, flow.trigger_type) == (
        "providerFlows/XyZ123",
        pc.ProviderFlowInfo.STATUS_LIVE,
        "Metric",
    )


def test_figures_a_refresh_did_not_read_are_kept_and_what_it_no_longer_lists_is_forgotten(
    service, stub
) -> None:
    first = _catalogue(T0, [_campaign("01A", figures=_figures(recipients=10)), _campaign("01B")])
    later = T0 + timedelta(minutes=10)
    second = _catalogue(later, [_campaign("01A")])  # the report skipped; 01B deleted
    assert _record(service, first, second) == [True, True]
    response = _campaigns(stub)
    (campaign,) = response.campaigns
    assert campaign.external_id == "01A"
    assert campaign.fetch_time.ToDatetime(tzinfo=UTC) == later
    assert dict(campaign.figures.statistics) == {"recipients": 10.0}
    assert campaign.figures.fetch_time.ToDatetime(tzinfo=UTC) == T0  # as old as they are
    assert response.fetch_time.ToDatetime(tzinfo=UTC) == later


def test_a_refresh_older_than_the_cache_is_dropped(service, stub) -> None:
    newer = _catalogue(T0, [_campaign("01N")])
    older = _catalogue(T0 - timedelta(minutes=10), [_campaign("01O")])
    assert _record(service, newer, older) == [True, False]
    assert _ids(_campaigns(stub)) == ["01N"]


def test_a_refresh_in_parts_forgets_only_once_its_last_part_is_recorded(service, stub) -> None:
    _record(service, _catalogue(T0, [_campaign("01OLD")]))
    later = T0 + timedelta(minutes=10)
    _record(service, _catalogue(later, [_campaign("01P1")], part=0, parts=2))
    assert sorted(_ids(_campaigns(stub))) == ["01OLD", "01P1"]
    _record(service, _catalogue(later, [_campaign("01P2")], part=1, parts=2))
    assert sorted(_ids(_campaigns(stub))) == ["01P1", "01P2"]


def test_a_campaign_and_a_flow_may_share_an_id(service, stub) -> None:
    """ActiveCampaign numbers campaigns and automations each from 1."""
    _record(service, _catalogue(T0, [_campaign("1")], [_flow("1")], provider="activecampaign"))
    assert _ids(_campaigns(stub)) == ["1"]
    flows = stub.ListProviderFlows(pb.ListProviderFlowsRequest()).flows
    assert [f.external_id for f in flows] == ["1"]


def test_campaigns_are_filtered_by_type_and_status_and_paged(service, stub) -> None:
    _record(
        service,
        _catalogue(
            T0,
            [
                _campaign("01E1"),
                _campaign("01E2", status=DRAFT),
                _campaign("01S1", channel=SMS),
                _campaign("01E3"),
            ],
        ),
    )
    sms = _campaigns(stub, types=[pc.ProviderCampaign.TYPE_SMS])
    assert _ids(sms) == ["01S1"]
    drafts = _campaigns(stub, statuses=[pc.ProviderCampaign.STATUS_DRAFT])
    assert _ids(drafts) == ["01E2"]
    sent_email = _campaigns(
        stub, types=[pc.ProviderCampaign.TYPE_EMAIL], statuses=[pc.ProviderCampaign.STATUS_SENT]
    )
    assert sorted(_ids(sent_email)) == ["01E1", "01E3"]
    first = _campaigns(stub, page_size=3)
    rest = _campaigns(stub, page_size=3, page_token=first.next_page_token)
    assert len(first.campaigns) == 3 and first.next_page_token
    assert rest.next_page_token == ""
    assert sorted(_ids(first) + _ids(rest)) == ["01E1", "01E2", "01E3", "01S1"]


def test_one_campaign_is_read_by_name(service, stub) -> None:
    _record(service, _catalogue(T0, [_campaign("01G", figures=_figures(delivered=5))]))
    got = stub.GetProviderCampaign(pb.GetProviderCampaignRequest(name="providerCampaigns/01G"))
    assert got.campaign.external_id == "01G"
    assert dict(got.campaign.figures.statistics) == {"delivered": 5.0}


def test_an_unknown_campaign_is_not_found_and_a_flow_is_no_campaign(service, stub) -> None:
    _record(service, _catalogue(T0, [], [_flow("F1")]))
    for name in ("providerCampaigns/nope", "providerCampaigns/F1"):
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetProviderCampaign(pb.GetProviderCampaignRequest(name=name))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_fields", "field", "reason"),
    [
        ({"name": ""}, "name", "REQUIRED"),
        ({"name": "campaigns/01A"}, "name", "INVALID_NAME"),
        ({"name": "providerCampaigns/a b"}, "name", "INVALID_NAME"),
    ],
)
def test_a_bad_campaign_name_is_refused(stub, request_fields, field, reason) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetProviderCampaign(pb.GetProviderCampaignRequest(**request_fields))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {field: reason}


def test_bad_list_requests_name_every_bad_field(stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _campaigns(
            stub,
            types=[pc.ProviderCampaign.TYPE_EMAIL, pc.ProviderCampaign.TYPE_UNSPECIFIED],
            statuses=[pc.ProviderCampaign.STATUS_UNSPECIFIED],
            page_size=-1,
            page_token="forged",
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {
        "types[1]": "INVALID_VALUE",
        "statuses[0]": "INVALID_VALUE",
        "page_size": "OUT_OF_RANGE",
        "page_token": "INVALID_PAGE_TOKEN",
    }
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListProviderFlows(
            pb.ListProviderFlowsRequest(statuses=[pc.ProviderFlowInfo.STATUS_UNSPECIFIED])
        )
    assert field_violations(caught.value) == {"statuses[0]": "INVALID_VALUE"}
    token = _campaigns(stub, page_size=1).next_page_token or "x"
    with pytest.raises(grpc.RpcError) as caught:  # a campaigns token is no flows token
        stub.ListProviderFlows(pb.ListProviderFlowsRequest(page_token=token))
    assert field_violations(caught.value) == {"page_token": "INVALID_PAGE_TOKEN"}


def _link(stub, flow: str, provider: fp.ProviderFlow) -> None:
    current = stub.GetFlow(pb.GetFlowRequest(name=flow)).flow
    current.provider.CopyFrom(provider)
    mask = field_mask_pb2.FieldMask(paths=["provider"])
    stub.UpdateFlow(pb.UpdateFlowRequest(flow=current, update_mask=mask))


def test_provider_flows_are_joined_with_our_flows_linked_to_them(service, stub) -> None:
    before = {
        name: stub.GetFlow(pb.GetFlowRequest(name=name)).flow.provider
        for name in ("flows/welcome", "flows/win-back")
    }
    for name, provider in before.items():
        linked_provider = fp.ProviderFlow()
        linked_provider.CopyFrom(provider)
        linked_provider.klaviyo_flow_id = "KwELC1"
        _link(stub, name, linked_provider)
    try:
        _record(
            service,
            _catalogue(T0, [], [_flow("KwELC1"), _flow("Other1", bus_pb2.CATALOGUE_STATUS_PAUSED)]),
        )
        flows = stub.ListProviderFlows(pb.ListProviderFlowsRequest()).flows
        linked = {f.external_id: list(f.flows) for f in flows}
        assert linked == {"KwELC1": ["flows/welcome", "flows/win-back"], "Other1": []}
        paused = stub.ListProviderFlows(
            pb.ListProviderFlowsRequest(statuses=[pc.ProviderFlowInfo.STATUS_PAUSED])
        ).flows
        assert [f.external_id for f in paused] == ["Other1"]
        assert dict(flows[0].figures.statistics) == {"recipients": 3.0}
    finally:
        for name, provider in before.items():
            _link(stub, name, provider)


def test_activecampaign_automations_are_joined_by_automation_id(service, stub) -> None:
    before = stub.GetFlow(pb.GetFlowRequest(name="flows/cart-recovery")).flow.provider
    _link(stub, "flows/cart-recovery", fp.ProviderFlow(activecampaign_automation_id="2"))
    try:
        _record(service, _catalogue(T0, [], [_flow("2"), _flow("3")], provider="activecampaign"))
        flows = stub.ListProviderFlows(pb.ListProviderFlowsRequest()).flows
        assert {f.external_id: list(f.flows) for f in flows} == {
            "2": ["flows/cart-recovery"],
            "3": [],
        }
    finally:
        _link(stub, "flows/cart-recovery", before)


def test_nothing_cached_yet_has_no_fetch_time(stub) -> None:
    response = _campaigns(stub)
    assert list(response.campaigns) == [] and not response.HasField("fetch_time")
