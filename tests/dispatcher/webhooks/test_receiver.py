"""The receiver's answers, in-process (httpx's ASGI transport) with a JetStream
stand-in that notes what is published or fails as told. The real bus is in
test_integration.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, cast
from urllib.parse import quote, urlsplit

import httpx
import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import PubAck
from prometheus_client import REGISTRY

from dispatcher.webhook_registration import endpoint_url
from dispatcher.webhooks import ReceiverConfig, create_app
from tests.dispatcher.webhooks.helpers import (
    AC_SECRET,
    NOW,
    SECRET,
    ac_form,
    klaviyo_body,
    klaviyo_item,
    signed_headers,
)

KLAVIYO = "/webhooks/klaviyo"
AC = f"/webhooks/activecampaign/{AC_SECRET}"


class FakeJetStream:
    """Notes each publish; raises `fail` instead when set."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str], str | None]] = []
        self.fail: Exception | None = None

    async def publish(
        self,
        subject: str,
        payload: bytes,
        timeout: float | None = None,  # noqa: ASYNC109 (JetStreamContext.publish's own)
        stream: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> PubAck:
        if self.fail is not None:
            raise self.fail
        self.published.append((subject, payload, headers or {}, stream))
        return PubAck(stream=stream or "", seq=len(self.published))

    def received(self) -> list[bus_pb2.EngagementReceived]:
        return [bus_pb2.EngagementReceived.FromString(p) for _, p, _, _ in self.published]


class Site:
    """The receiver on a stand-in bus (None: not connected), at a fixed time."""

    def __init__(self, **config: Any) -> None:
        self.js: FakeJetStream | None = FakeJetStream()
        settings = {"klaviyo_secret": SECRET, "activecampaign_secret": AC_SECRET} | config
        self.app = create_app(ReceiverConfig(**settings), self._jetstream, clock=self._now)

    def _jetstream(self) -> JetStreamContext | None:
        return cast(JetStreamContext | None, self.js)

    @staticmethod
    def _now() -> datetime:
        return NOW

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
        async def send() -> int:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                reply = await client.post(path, content=body, headers=headers)
                return reply.status_code

        return asyncio.run(send())

    @property
    def published(self) -> list[bus_pb2.EngagementReceived]:
        assert self.js is not None
        return self.js.received()


@pytest.fixture
def site() -> Iterator[Site]:
    yield Site()


def counted(provider: str, outcome: str) -> float:
    labels = {"provider": provider, "outcome": outcome}
    return REGISTRY.get_sample_value("marketing_dispatcher_webhooks_total", labels) or 0.0


def test_a_signed_klaviyo_delivery_is_published_as_one_message(site: Site) -> None:
    body = klaviyo_body(
        klaviyo_item("ev-1", "event:klaviyo.opened_email"),
        klaviyo_item("ev-2", "event:klaviyo.bounced_email", properties={"Bounce Type": "hard"}),
        klaviyo_item("ev-3", "event:klaviyo.viewed_product"),
    )
    before = counted("klaviyo", "accepted")

    assert site.post(KLAVIYO, body, signed_headers(body)) == 200

    (message,) = site.published
    assert [e.external_id for e in message.engagements] == ["ev-1", "ev-2"]
    assert message.id.startswith("klaviyo:")
    assert site.js is not None
    subject, _, headers, stream = site.js.published[0]
    assert (subject, stream) == (topology.ENGAGEMENT_SUBJECT, topology.WEBHOOKS_STREAM)
    assert headers == {"Nats-Msg-Id": message.id}
    assert counted("klaviyo", "accepted") == before + 1


def test_an_activecampaign_post_is_published(site: Site) -> None:
    assert site.post(AC, ac_form("unsubscribe")) == 200

    (message,) = site.published
    (engagement,) = message.engagements
    assert engagement.type == bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED
    assert message.id.startswith("activecampaign:")


def test_published_engagements_are_counted_by_type(site: Site) -> None:
    labels = {"provider": "activecampaign", "type": "clicked"}
    name = "marketing_dispatcher_webhook_engagements_total"
    before = REGISTRY.get_sample_value(name, labels) or 0.0

    site.post(AC, ac_form("click"))

    assert REGISTRY.get_sample_value(name, labels) == before + 1


def test_a_bad_signature_is_401_and_publishes_nothing(site: Site) -> None:
    body = klaviyo_body(klaviyo_item())
    before = counted("klaviyo", "refused")

    assert site.post(KLAVIYO, body, signed_headers(body, secret="not-ours")) == 401
    assert site.post(KLAVIYO, body, {}) == 401

    assert site.published == []
    assert counted("klaviyo", "refused") == before + 2


def test_klaviyo_deliveries_are_refused_without_a_secret() -> None:
    site = Site(klaviyo_secret="")
    body = klaviyo_body(klaviyo_item())

    assert site.post(KLAVIYO, body, signed_headers(body, secret="")) == 401
    assert site.published == []


def test_a_signed_body_that_is_not_json_is_400(site: Site) -> None:
    body = b"{not json"
    before = counted("klaviyo", "malformed")

    assert site.post(KLAVIYO, body, signed_headers(body)) == 400
    assert site.published == []
    assert counted("klaviyo", "malformed") == before + 1


def test_a_body_naming_another_webhook_is_401(site: Site) -> None:
    body = klaviyo_body(klaviyo_item(), webhook_id="01JOTHER")

    assert site.post(KLAVIYO, body, signed_headers(body)) == 401


@pytest.mark.parametrize("secret", ["wrong", AC_SECRET[:-1], AC_SECRET + "0"])
def test_activecampaign_with_another_secret_is_404(site: Site, secret: str) -> None:
    before = counted("activecampaign", "refused")

    assert site.post(f"/webhooks/activecampaign/{secret}", ac_form()) == 404
    assert site.published == []
    assert counted("activecampaign", "refused") == before + 1


def test_activecampaign_without_a_secret_is_404() -> None:
    site = Site(activecampaign_secret="")

    assert site.post("/webhooks/activecampaign/", ac_form()) == 404
    assert site.post("/webhooks/activecampaign/anything", ac_form()) == 404


def test_a_delivery_of_nothing_we_take_is_200_and_publishes_nothing(site: Site) -> None:
    body = klaviyo_body(klaviyo_item(topic="event:klaviyo.received_push"))
    before = counted("activecampaign", "ignored")

    assert site.post(KLAVIYO, body, signed_headers(body)) == 200
    assert site.post(AC, ac_form("subscribe")) == 200

    assert site.published == []
    assert counted("activecampaign", "ignored") == before + 1


def test_a_body_over_the_limit_is_413() -> None:
    site = Site(max_body_bytes=1000)
    body = klaviyo_body(klaviyo_item(properties={"Reason": "x" * 1000}))

    assert site.post(KLAVIYO, body, signed_headers(body)) == 413
    assert site.post(AC, ac_form(unsubscribe__reason="x" * 1000)) == 413
    assert site.published == []


def test_the_default_limit_is_5_mb(site: Site) -> None:
    body = b"x" * (5 * 1024 * 1024 + 1)

    assert site.post(KLAVIYO, body, signed_headers(body)) == 413


def test_without_the_bus_it_is_503(site: Site) -> None:
    site.js = None
    body = klaviyo_body(klaviyo_item())
    before = counted("klaviyo", "unavailable")

    assert site.post(KLAVIYO, body, signed_headers(body)) == 503
    assert site.post(AC, ac_form()) == 503
    assert counted("klaviyo", "unavailable") == before + 1


@pytest.mark.parametrize("error", [NatsTimeoutError(), ConnectionResetError(), TimeoutError()])
def test_a_publish_that_fails_is_503(site: Site, error: Exception) -> None:
    assert site.js is not None
    site.js.fail = error
    body = klaviyo_body(klaviyo_item())

    assert site.post(KLAVIYO, body, signed_headers(body)) == 503


def test_only_post_is_served(site: Site) -> None:
    async def get() -> int:
        transport = httpx.ASGITransport(app=site.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get(KLAVIYO)).status_code

    assert asyncio.run(get()) == 405


def test_answer_times_are_observed(site: Site) -> None:
    name = "marketing_dispatcher_webhook_seconds_count"
    before = REGISTRY.get_sample_value(name, {"provider": "activecampaign"}) or 0.0

    site.post(AC, ac_form())

    assert REGISTRY.get_sample_value(name, {"provider": "activecampaign"}) == before + 1


def test_a_body_over_the_limit_without_a_declared_length_is_413() -> None:
    site = Site(max_body_bytes=1000)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=site.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(AC, content=chunks())

    reply = asyncio.run(send())

    assert "content-length" not in reply.request.headers
    assert reply.status_code == 413


def test_an_activecampaign_event_our_api_calls_caused_is_200_and_ignored(site: Site) -> None:
    before = counted("activecampaign", "ignored")

    assert site.post(AC, ac_form("unsubscribe", initiated_from="api")) == 200

    assert site.published == []
    assert counted("activecampaign", "ignored") == before + 1


@pytest.mark.parametrize("secret", ["a/b", "50%off", "a%2Fb", "sp ace/..%", "ümlaut?#&="])
def test_a_secret_of_any_characters_matches_quoted_in_the_path(secret: str) -> None:
    site = Site(activecampaign_secret=secret)
    path = urlsplit(endpoint_url("activecampaign", "http://test", secret)).path

    assert site.post(path, ac_form("open")) == 200
    assert len(site.published) == 1
    assert site.post(f"/webhooks/activecampaign/{quote(secret + 'x', safe='')}", ac_form()) == 404
