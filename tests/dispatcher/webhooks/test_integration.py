"""The receiver over real HTTP (uvicorn on a free port) publishing to a real
nats-server: what it accepts reaches the MARKETING_WEBHOOKS stream, read back
as the service reads it (a pull consumer on the service-engagement durable); a
delivery repeated as it was is stored once; what it refuses, nothing; without
the bus it answers 503. And the dispatcher runs it beside its workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import nats
import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from nats.js import JetStreamContext

from dispatcher.main import Dispatcher, build_provider
from dispatcher.settings import DispatcherSettings
from dispatcher.webhooks import ReceiverConfig, WebhookServer, create_app
from tests.dispatcher.webhooks.helpers import (
    AC_SECRET,
    SECRET,
    ac_form,
    klaviyo_body,
    klaviyo_item,
    signed_headers,
)
from tests.harness import eventually
from tests.processes import NatsServer, free_port

CONFIG = ReceiverConfig(klaviyo_secret=SECRET, activecampaign_secret=AC_SECRET)
AC = f"/webhooks/activecampaign/{AC_SECRET}"


@dataclass
class Running:
    js: JetStreamContext
    http: httpx.AsyncClient
    consumer: JetStreamContext.PullSubscription

    async def stored(self) -> int:
        """The last sequence of the webhooks stream: how many were ever stored."""
        info = await self.js.stream_info(topology.WEBHOOKS_STREAM)
        return info.state.last_seq

    async def take(self) -> list[bus_pb2.EngagementReceived]:
        """Every message waiting for the service, acknowledged."""
        taken: list[bus_pb2.EngagementReceived] = []
        while True:
            try:
                msgs = await self.consumer.fetch(batch=100, timeout=0.5)
            except TimeoutError:  # nats-py's own, or asyncio's: nothing (more) waiting
                return taken
            for msg in msgs:
                taken.append(bus_pb2.EngagementReceived.FromString(msg.data))
                await msg.ack()


@asynccontextmanager
async def receiving(
    nats_url: str, jetstream: Callable[[JetStreamContext], JetStreamContext | None] = lambda js: js
) -> AsyncIterator[Running]:
    """The receiver on a free port, publishing through `jetstream(js)` (the
    connection's JetStream unless told)."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await topology.declare(js)
    consumer = await js.pull_subscribe_bind(
        durable=topology.SERVICE_ENGAGEMENT, stream=topology.WEBHOOKS_STREAM
    )
    server = WebhookServer.listen("127.0.0.1:0")
    server.start(create_app(CONFIG, lambda: jetstream(js)))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            running = Running(js, http, consumer)
            await running.take()  # what an earlier test left
            yield running
    finally:
        await server.stop()
        await nc.close()


def signed_delivery(*external_ids: str) -> tuple[bytes, dict[str, str]]:
    items = [klaviyo_item(i, "event:klaviyo.clicked_email") for i in external_ids]
    body = klaviyo_body(*items)
    return body, signed_headers(body, sent=datetime.now(UTC))


def test_a_signed_klaviyo_delivery_is_stored_once(own_nats: NatsServer) -> None:
    async def scenario() -> None:
        async with receiving(own_nats.url) as running:
            body, headers = signed_delivery("ev-1", "ev-2")
            before = await running.stored()

            first = await running.http.post("/webhooks/klaviyo", content=body, headers=headers)
            again = await running.http.post("/webhooks/klaviyo", content=body, headers=headers)

            assert (first.status_code, again.status_code) == (200, 200)
            assert await running.stored() == before + 1  # the repeat was a duplicate
            (message,) = await running.take()
            assert [e.external_id for e in message.engagements] == ["ev-1", "ev-2"]
            assert {e.type for e in message.engagements} == {bus_pb2.ENGAGEMENT_TYPE_CLICKED}

    asyncio.run(scenario())


def test_an_activecampaign_post_is_stored_once(own_nats: NatsServer) -> None:
    async def scenario() -> None:
        async with receiving(own_nats.url) as running:
            form = ac_form("bounce", bounce__type="hard", bounce__description="no such user")
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            before = await running.stored()

            for _ in range(2):
                reply = await running.http.post(AC, content=form, headers=headers)
                assert reply.status_code == 200

            assert await running.stored() == before + 1
            (message,) = await running.take()
            (engagement,) = message.engagements
            assert engagement.type == bus_pb2.ENGAGEMENT_TYPE_BOUNCED
            assert (engagement.bounce_type, engagement.detail) == ("hard", "no such user")
            assert engagement.email == "ada@example.com"

    asyncio.run(scenario())


def test_what_is_refused_publishes_nothing(own_nats: NatsServer) -> None:
    async def scenario() -> None:
        async with receiving(own_nats.url) as running:
            body, headers = signed_delivery("ev-3")
            headers["Klaviyo-Signature"] = "0" * 64
            before = await running.stored()

            refused = await running.http.post("/webhooks/klaviyo", content=body, headers=headers)
            unknown = await running.http.post("/webhooks/activecampaign/guess", content=ac_form())

            assert (refused.status_code, unknown.status_code) == (401, 404)
            assert await running.stored() == before
            assert await running.take() == []

    asyncio.run(scenario())


@pytest.mark.parametrize("bus", ["not connected", "connection closed"])
def test_without_the_bus_it_is_503(own_nats: NatsServer, bus: str) -> None:
    async def scenario() -> None:
        closed = await nats.connect(own_nats.url)
        await closed.close()
        jetstream = None if bus == "not connected" else closed.jetstream()
        async with receiving(own_nats.url, lambda _: jetstream) as running:
            body, headers = signed_delivery("ev-4")
            before = await running.stored()

            klaviyo = await running.http.post("/webhooks/klaviyo", content=body, headers=headers)
            activecampaign = await running.http.post(AC, content=ac_form())

            assert (klaviyo.status_code, activecampaign.status_code) == (503, 503)
            assert await running.stored() == before

    asyncio.run(scenario())


def test_the_dispatcher_serves_webhooks_until_it_shuts_down(
    own_nats: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIVECAMPAIGN_WEBHOOK_SECRET", AC_SECRET)
    settings = DispatcherSettings(
        nats_url=own_nats.url,
        sandbox_url=f"http://127.0.0.1:{free_port()}",  # nothing is delivered
        metrics_address="",
        shutdown_grace_s=5.0,
        gc_gen0_threshold=0,
    )

    async def scenario() -> None:
        webhooks = WebhookServer.listen("127.0.0.1:0")
        dispatcher = Dispatcher(settings, build_provider(settings), webhooks=webhooks)
        serving = asyncio.create_task(dispatcher.serve())
        url = f"http://127.0.0.1:{webhooks.port}{AC}"
        async with httpx.AsyncClient() as http:

            async def accepted() -> bool:
                return (await http.post(url, content=ac_form("open"))).status_code == 200

            await eventually(accepted, timeout_s=30)  # 503 until the bus is connected
            dispatcher.shutdown()
            assert await asyncio.wait_for(serving, 30) == 0
            with pytest.raises(httpx.ConnectError):
                await http.post(url, content=ac_form("open"))

    asyncio.run(scenario())
