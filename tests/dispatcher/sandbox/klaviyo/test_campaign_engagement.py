"""Seeded engagement with the Klaviyo sandbox's campaigns (POST /_sandbox/campaign-engagement):
each message a campaign sends is delivered, opened and clicked as a deterministic draw says,
and each engagement is reported as POST /_sandbox/engagement reports one: signed webhooks the
dispatcher's receiver reads into Engagements naming the campaign and the message."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from marketing.bus.v1 import bus_pb2

from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.webhooks import klaviyo as receiving
from tests.dispatcher.helpers import EpochClock, headers
from tests.dispatcher.sandbox.klaviyo.campaign_helpers import (
    SUBJECT,
    SUBSCRIBED,
    campaign_messages,
    email_campaign,
    ok,
)
from tests.dispatcher.sandbox.receiver import Receiver, running_receiver

START = 1_800_000_000.0
SECRET = "s3cret-for-campaigns"
TOPICS = ("received_email", "opened_email", "clicked_email")
KIND = {
    bus_pb2.ENGAGEMENT_TYPE_DELIVERED: "delivered",
    bus_pb2.ENGAGEMENT_TYPE_OPENED: "opened",
    bus_pb2.ENGAGEMENT_TYPE_CLICKED: "clicked",
}


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def sandbox(clock: EpochClock) -> Iterator[Sandbox]:
    with start_sandbox(clock=clock, webhook_backoff_s=0.05) as running:
        yield running


@pytest.fixture
def http(sandbox: Sandbox, clock: EpochClock) -> Iterator[httpx.Client]:
    """Klaviyo's headers; the clock moves 4 s before each call (webhooks allow 1/s, 15/m)."""

    def tick(request: httpx.Request) -> None:
        clock.advance(4.0)

    with httpx.Client(
        base_url=sandbox.base_url, headers=headers(), event_hooks={"request": [tick]}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def spring(sandbox: Sandbox) -> str:
    return sandbox.create_list("Spring sale: part A")


def subscribe_webhook(http: httpx.Client, receiver: Receiver) -> None:
    data = [{"type": "webhook-topic", "id": f"event:klaviyo.{topic}"} for topic in TOPICS]
    attributes = {"name": "t", "endpoint_url": receiver.url + "/k", "secret_key": SECRET}
    body = {
        "data": {
            "type": "webhook",
            "attributes": attributes,
            "relationships": {"webhook-topics": {"data": data}},
        }
    }
    ok(http.post("/api/webhooks", json=body), 201)


def seed(http: httpx.Client, **document: Any) -> dict[str, Any]:
    configured: dict[str, Any] = ok(http.post("/_sandbox/campaign-engagement", json=document))
    return configured


def received(receiver: Receiver) -> list[bus_pb2.Engagement]:
    """Every engagement delivered, checked as the dispatcher's receiver checks it."""
    engagements: list[bus_pb2.Engagement] = []
    now = datetime.now(UTC)
    for request in receiver.requests():
        given = httpx.Headers(request.headers)
        webhook_id = receiving.verify(request.body, given, secret=SECRET, now=now, window_s=300)
        engagements += receiving.parse(request.body, webhook_id)
    return engagements


def test_seeded_engagement_is_reported_as_signed_webhooks_naming_campaign_and_message(
    http: httpx.Client, sandbox: Sandbox, receiver: Receiver, spring: str
) -> None:
    for email in ("ada@example.com", "bob@example.com"):
        sandbox.plant_profile(email=email, lists=[spring], consent=SUBSCRIBED)
    subscribe_webhook(http, receiver)
    everything = {"delivered": 1.0, "opened": 1.0, "clicked": 1.0}
    seed(http, seed=7, default={"delivered": 0.0}, by_subject={SUBJECT: everything})

    campaign_id = email_campaign(http, spring)

    assert sandbox.webhooks_idle()
    counted = sandbox.state.campaigns.get(campaign_id)
    assert counted is not None  # the values reports count what was drawn
    assert counted.counts == {
        "recipients": 2.0,
        "delivered": 2.0,
        "opens_unique": 2.0,
        "clicks_unique": 2.0,
    }
    messages = {m["email"]: str(m["id"]) for m in campaign_messages(http)}
    found = sorted(
        (e.email, KIND[e.type], e.campaign_id, e.message_id, e.url) for e in received(receiver)
    )
    assert found == sorted(
        (email, kind, campaign_id, message_id, url)
        for email, message_id in messages.items()
        for kind, url in (
            ("delivered", ""),
            ("opened", ""),
            ("clicked", "https://shop.example/sale"),  # the body's first link
        )
    )


def test_the_draws_are_random_random_of_seed_and_message_id(
    http: httpx.Client, sandbox: Sandbox, receiver: Receiver, spring: str
) -> None:
    for index in range(40):
        sandbox.plant_profile(email=f"p{index}@example.com", lists=[spring], consent=SUBSCRIBED)
    subscribe_webhook(http, receiver)
    rates = {"delivered": 0.9, "opened": 0.5, "clicked": 0.5}
    seed(http, seed=11, default=rates)

    email_campaign(http, spring)

    assert sandbox.webhooks_idle()
    expected: dict[str, set[str]] = {"delivered": set(), "opened": set(), "clicked": set()}
    for message in campaign_messages(http):
        draw = random.Random(f"11:{message['id']}").random
        delivered, opened, clicked = draw() < 0.9, draw() < 0.5, draw() < 0.5
        for kind, happened in (
            ("delivered", delivered),
            ("opened", delivered and opened),
            ("clicked", delivered and opened and clicked),
        ):
            if happened:
                expected[kind].add(str(message["id"]))
    reported: dict[str, set[str]] = {"delivered": set(), "opened": set(), "clicked": set()}
    for engagement in received(receiver):
        reported[KIND[engagement.type]].add(engagement.message_id)
    assert reported == expected
    assert 0 < len(expected["clicked"]) < len(expected["opened"]) < len(expected["delivered"])


def test_without_a_seed_nothing_is_engaged_and_the_configuration_can_be_read_and_dropped(
    http: httpx.Client, sandbox: Sandbox, receiver: Receiver, spring: str
) -> None:
    sandbox.plant_profile(email="ada@example.com", lists=[spring], consent=SUBSCRIBED)
    subscribe_webhook(http, receiver)
    configured = seed(http, seed=3, default={"opened": 0.25}, by_subject={"Hi": {"clicked": 1}})
    assert configured == {
        "seed": 3,
        "default": {"delivered": 1.0, "opened": 0.25, "clicked": 0.0},
        "by_subject": {"Hi": {"delivered": 1.0, "opened": 0.25, "clicked": 1.0}},
    }
    assert ok(http.get("/_sandbox/campaign-engagement")) == configured
    ok(http.delete("/_sandbox/campaign-engagement"), 204)

    email_campaign(http, spring)

    assert campaign_messages(http)[0]["status"] == "sent"
    assert sandbox.webhooks_idle()
    assert receiver.requests() == []


@pytest.mark.parametrize(
    "document",
    [
        {"default": {"opened": 0.5}},
        {"seed": "7"},
        {"seed": 7, "default": {"opened": 1.5}},
        {"seed": 7, "default": {"bounced": 0.1}},
        {"seed": 7, "by_subject": {"Hi": {"opened": True}}},
        {"seed": 7, "extra": 1},
    ],
    ids=["no seed", "seed text", "above 1", "unknown kind", "not a number", "unknown field"],
)
def test_a_bad_engagement_configuration_is_refused(
    http: httpx.Client, document: dict[str, Any]
) -> None:
    answer = http.post("/_sandbox/campaign-engagement", json=document)

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["detail"].startswith("Invalid campaign engagement")
