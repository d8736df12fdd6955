"""The catalogue refresher against the sandboxes over HTTP and a real nats-server: one
replica (the catalogue lease's holder) reads the provider's campaigns and flows with their
figures and publishes them for the service; every call goes through the provider gate and
the shared budget, so Klaviyo's reporting endpoints (1/s, 2/min, 225/day) are never called
more often, however many replicas; a 429 pauses only the endpoint it answered; a replica
taking the lease over does not read again before the refresh is due."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer
from nats.js.errors import KeyNotFoundError

from dispatcher.budget import SharedBudget
from dispatcher.catalogue import CatalogueRefresher
from dispatcher.delivery.gate import ProviderGate
from dispatcher.ordering.lease import Lease
from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.base import Provider
from dispatcher.providers.klaviyo.catalogue import (
    CAMPAIGN_VALUES,
    CAMPAIGN_VALUES_REPORTS,
    FLOW_VALUES,
    FLOW_VALUES_REPORTS,
    LIST_CAMPAIGNS,
)
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.sandbox.activecampaign import start_activecampaign_sandbox
from dispatcher.sandbox.klaviyo.catalogue import flow_id
from tests.dispatcher.helpers import API_KEY, headers
from tests.harness import eventually
from tests.processes import NatsServer

LEASE_TTL_S = 9.0
SUMMER = {
    "name": "Summer sale",
    "statistics": {"recipients": 200, "delivered": 190, "opens_unique": 95, "clicks_unique": 19},
}
WELCOME = {
    "name": "Welcome",
    "trigger_metric": "Placed Order",
    "messages": [{"delay_s": 0, "subject": "Thanks"}],
}


class Counted(httpx.AsyncHTTPTransport):
    """A real transport that counts the paths of the requests it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.paths: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths[request.url.path] += 1
        return await super().handle_async_request(request)


@dataclass
class Replica:
    """One dispatcher replica's part in the refresh: its provider client, gate (on the shared
    budget), lease, and refresher."""

    name: str
    bus: Bus
    provider: Provider
    transport: Counted
    gate: ProviderGate
    lease: Lease
    refresher: CatalogueRefresher

    async def keep_lease(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.lease.acquire_or_renew()
            await asyncio.sleep(LEASE_TTL_S / 9)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with start_sandbox(api_key=API_KEY) as running:
        yield running


@asynccontextmanager
async def replica(
    nats: NatsServer,
    account: str,
    provider: KlaviyoClient | ActiveCampaignClient,
    transport: Counted,
    *,
    interval_s: float,
    figures_wait_s: float = 1.0,
    provider_name: str = "klaviyo",
) -> AsyncIterator[Replica]:
    name = f"replica-{uuid.uuid4().hex[:6]}"
    bus = Bus(nats.url, name=name)
    bus.start()
    assert await bus.wait_ready(30)
    assert bus.js is not None
    leases = await bus.js.key_value(topology.LEASES_BUCKET)
    gate = ProviderGate()
    if provider.limits.paces_requests:
        provider.pace_requests(gate.pace)
    gate.share(
        SharedBudget(await bus.js.key_value(topology.BUDGET_BUCKET), account, provider.limits)
    )
    lease = Lease(leases, topology.CATALOGUE_LEASE, name, LEASE_TTL_S)
    refresher = CatalogueRefresher(
        provider,
        gate,
        lease,
        bus,
        leases,
        provider=provider_name,
        interval_s=interval_s,
        figures_wait_s=figures_wait_s,
        clock=utc_now,
    )
    try:
        yield Replica(name, bus, provider, transport, gate, lease, refresher)
    finally:
        await lease.release()
        await provider.aclose()
        await bus.close()


def klaviyo(sandbox: Sandbox) -> tuple[KlaviyoClient, Counted]:
    transport = Counted()
    return KlaviyoClient(API_KEY, base_url=sandbox.base_url, transport=transport), transport


async def forget_refreshes(nats: NatsServer) -> None:
    """A test starts with no catalogue published and no refresh noted (one server per module)."""
    await published(nats)
    bus = Bus(nats.url, name="test-reset")
    bus.start()
    assert await bus.wait_ready(30) and bus.js is not None
    leases = await bus.js.key_value(topology.LEASES_BUCKET)
    for key in (topology.CATALOGUE_REFRESHED_KEY, topology.CATALOGUE_LEASE):
        with contextlib.suppress(KeyNotFoundError):
            await leases.purge(key)
    await bus.close()


async def published(nats: NatsServer) -> list[bus_pb2.ProviderCatalogue]:
    """The catalogues published so far (taken off the service's consumer, acked)."""
    bus = Bus(nats.url, name="test-reader")
    bus.start()
    assert await bus.wait_ready(30) and bus.nc is not None
    consumer = PullConsumer(
        bus.nc, stream=topology.RESULTS_STREAM, durable=topology.SERVICE_CATALOGUE
    )
    found: list[bus_pb2.ProviderCatalogue] = []
    while batch := await consumer.fetch(100, wait_s=0.5, linger_s=0.05):
        for msg in batch:
            found.append(bus_pb2.ProviderCatalogue.FromString(msg.data))
            await msg.ack()
    await consumer.close()
    await bus.close()
    return found


def plant_klaviyo(sandbox: Sandbox) -> dict[str, Any]:
    """A sent email campaign with figures, an SMS draft, a flow, and the Placed Order metric
    (an order that also starts the flow)."""
    with httpx.Client(base_url=sandbox.base_url, headers=headers(), timeout=10) as http:
        planted = http.post(
            "/_sandbox/campaigns",
            json=[SUMMER, {"name": "Text us", "channel": "sms", "status": "Draft"}],
        ).json()["data"]
        assert http.post("/_sandbox/flows", json=WELCOME).status_code == 201
        order = {
            "data": {
                "type": "event",
                "attributes": {
                    "properties": {},
                    "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
                    "profile": {"data": {"type": "profile", "attributes": {"email": "a@b.co"}}},
                },
            }
        }
        assert http.post("/api/events", json=order).status_code == 202
    sandbox.messages()  # the flow's message goes out
    return {"summer": planted[0]["id"], "draft": planted[1]["id"]}


def calls_within(times: list[float], seconds: float) -> int:
    """The most calls of `times` in any window of `seconds` (sliding: a fixed window of the
    provider's is one of them)."""
    ordered = sorted(times)
    return max(
        (sum(1 for t in ordered if start <= t < start + seconds) for start in ordered), default=0
    )


def calls_per_fixed_minute(times: list[float]) -> int:
    """The most calls of `times` in one minute of the provider's, which start on the
    epoch's minutes."""
    minutes = [int(t // 60) for t in times]
    return max((minutes.count(m) for m in minutes), default=0)


def test_one_replica_refreshes_within_the_reporting_limits(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    ids = plant_klaviyo(sandbox)
    account = f"test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[Replica], list[bus_pb2.ProviderCatalogue]]:
        await forget_refreshes(own_nats)
        async with (
            replica(own_nats, account, *klaviyo(sandbox), interval_s=1.0) as a,
            replica(own_nats, account, *klaviyo(sandbox), interval_s=1.0) as b,
        ):
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(work)
                for r in (a, b)
                for work in (r.keep_lease(stop), r.refresher.run(stop))
            ]
            await asyncio.sleep(6.0)
            stop.set()
            await asyncio.gather(*tasks)
            return [a, b], await published(own_nats)

    replicas, catalogues = asyncio.run(scenario())

    working = [r for r in replicas if r.transport.paths]
    assert len(working) == 1, [dict(r.transport.paths) for r in replicas]
    assert len(catalogues) >= 3
    first, *later = catalogues
    campaigns = {c.id: c for c in first.campaigns}
    assert set(campaigns) == {ids["summer"], ids["draft"]}
    summer = campaigns[ids["summer"]]
    assert (summer.name, summer.status, summer.channel) == (
        "Summer sale",
        bus_pb2.CATALOGUE_STATUS_SENT,
        bus_pb2.CATALOGUE_CHANNEL_EMAIL,
    )
    assert summer.figures.source == "campaign-values-report"
    assert summer.figures.statistics["recipients"] == 200
    assert summer.figures.statistics["opens_unique"] == 95
    assert not campaigns[ids["draft"]].HasField("figures")
    assert campaigns[ids["draft"]].channel == bus_pb2.CATALOGUE_CHANNEL_SMS
    (flow,) = first.flows
    assert (flow.id, flow.name, flow.status) == (
        flow_id("Welcome"),
        "Welcome",
        bus_pb2.CATALOGUE_STATUS_SENDING,
    )
    assert flow.figures.statistics["recipients"] == 1
    # Every refresh lists everything; the reports' minute runs out after two of each.
    assert all({c.id for c in c_.campaigns} == set(campaigns) for c_ in later)
    assert any(not c.HasField("figures") for c_ in later for c in c_.campaigns)
    for path in (CAMPAIGN_VALUES_REPORTS, FLOW_VALUES_REPORTS):
        times = [r["received_s"] for r in sandbox.requests(path)]
        # Klaviyo's minutes are fixed windows (the sandbox's start on the epoch's
        # minutes): the six seconds may reach into a second one, with two calls more.
        assert 1 <= len(times) <= 4
        assert calls_within(times, 1.0) == 1 and calls_per_fixed_minute(times) <= 2
    assert sandbox.rejections() == []
    assert working[0].transport.paths["/api/metrics"] == 1  # found once, then kept


def test_a_429_pauses_only_the_report_it_answered(own_nats: NatsServer, sandbox: Sandbox) -> None:
    ids = plant_klaviyo(sandbox)
    sandbox.add_fault(path=CAMPAIGN_VALUES_REPORTS, status=429, retry_after=30)

    async def scenario() -> tuple[Replica, list[bus_pb2.ProviderCatalogue], dict[str, float]]:
        await forget_refreshes(own_nats)
        async with replica(
            own_nats, f"test-{uuid.uuid4().hex[:8]}", *klaviyo(sandbox), interval_s=600
        ) as r:
            assert await r.lease.acquire_or_renew()
            await r.refresher.refresh()
            pauses = {
                op: r.gate.pause_left(op) for op in (CAMPAIGN_VALUES, FLOW_VALUES, LIST_CAMPAIGNS)
            }
            await r.refresher.refresh()  # the campaign report is not even tried
            return r, await published(own_nats), pauses

    r, catalogues, pauses = asyncio.run(scenario())

    assert pauses[CAMPAIGN_VALUES] > 20 and pauses[FLOW_VALUES] == pauses[LIST_CAMPAIGNS] == 0
    assert len(catalogues) == 2
    for catalogue in catalogues:
        summer = next(c for c in catalogue.campaigns if c.id == ids["summer"])
        assert not summer.HasField("figures")
    assert catalogues[0].flows[0].HasField("figures")
    assert r.transport.paths[CAMPAIGN_VALUES_REPORTS] == 1  # the 429'd one only
    assert r.transport.paths["/api/campaigns"] == 4  # email and SMS, each refresh


def test_a_replica_taking_the_lease_over_waits_until_the_refresh_is_due(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    plant_klaviyo(sandbox)
    account = f"test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[bus_pb2.ProviderCatalogue]:
        await forget_refreshes(own_nats)
        async with replica(own_nats, account, *klaviyo(sandbox), interval_s=4.0) as first:
            assert await first.lease.acquire_or_renew()
            stop = asyncio.Event()
            run = asyncio.create_task(first.refresher.run(stop))

            async def refreshed() -> int:
                return first.transport.paths["/api/flows"]

            await eventually(refreshed, timeout_s=10)
            stop.set()
            await run
        # `first` released its lease on leaving: the next takes it over at once.
        async with replica(own_nats, account, *klaviyo(sandbox), interval_s=4.0) as second:
            assert await second.lease.acquire_or_renew()
            stop = asyncio.Event()
            run = asyncio.create_task(second.refresher.run(stop))
            await asyncio.sleep(6.0)
            stop.set()
            await run
        return await published(own_nats)

    catalogues = asyncio.run(scenario())
    times = [c.fetch_time.ToDatetime().timestamp() for c in catalogues]
    assert len(times) == 2
    assert times[1] - times[0] >= 4.0


def test_activecampaign_campaigns_and_automations_are_read_with_their_counters(
    own_nats: NatsServer,
) -> None:
    with start_activecampaign_sandbox(api_key="ac-key") as ac:
        with httpx.Client(base_url=ac.base_url, timeout=10) as http:
            planted = http.post(
                "/_sandbox/campaigns",
                json=[
                    {"name": f"Campaign {n}", "counters": {"send_amt": n, "uniqueopens": 1}}
                    for n in range(105)  # two pages
                ]
                + [{"name": "Draft", "status": 0}],
            )
            assert planted.status_code == 201
        transport = Counted()
        client = ActiveCampaignClient(
            ac.base_url, "ac-key", TrackingAccount("1", "k", ac.tracking_url), transport=transport
        )

        async def scenario() -> list[bus_pb2.ProviderCatalogue]:
            await forget_refreshes(own_nats)
            async with replica(
                own_nats,
                f"test-{uuid.uuid4().hex[:8]}",
                client,
                transport,
                interval_s=600,
                provider_name="activecampaign",
            ) as r:
                assert await r.lease.acquire_or_renew()
                await r.refresher.refresh()
            return await published(own_nats)

        (catalogue,) = asyncio.run(scenario())

    assert catalogue.provider == "activecampaign"
    assert len(catalogue.campaigns) == 106
    first = catalogue.campaigns[0]
    assert (first.id, first.name, first.status, first.provider_status) == (
        "1",
        "Campaign 0",
        bus_pb2.CATALOGUE_STATUS_SENT,
        "5",
    )
    assert first.figures.source == "campaigns" and first.figures.timeframe == ""
    assert catalogue.campaigns[104].figures.statistics["send_amt"] == 104.0
    assert catalogue.campaigns[105].status == bus_pb2.CATALOGUE_STATUS_DRAFT
    assert [f.name for f in catalogue.flows] == ["Welcome series", "Abandoned cart reminder"]
    assert dict(catalogue.flows[0].figures.statistics) == {"entered": 0.0, "exited": 0.0}
    assert transport.paths["/api/3/campaigns"] == 2
