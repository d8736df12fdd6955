"""Klaviyo's webhook endpoints in the sandbox: create_webhook with Klaviyo's checks (400 naming
the pointer; https only, loopback hosts excepted), list, read, delete, the topics, and their
rate limit of 1/s and 15/m, on a virtual clock."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.sandbox.klaviyo.webhook_book import TOPICS
from tests.dispatcher.helpers import EpochClock, headers

START = 1_800_000_000.0  # a whole minute of epoch time
STEP_S = 4.0  # between calls: under 1 a second and 15 a minute


def webhook_body(
    url: str = "https://hooks.example/webhooks/klaviyo",
    topics: tuple[str, ...] = ("event:klaviyo.opened_email",),
    **attributes: Any,
) -> dict[str, Any]:
    topic_data = [{"type": "webhook-topic", "id": topic} for topic in topics]
    return {
        "data": {
            "type": "webhook",
            "attributes": {"name": "ours", "endpoint_url": url, "secret_key": "s3cret"}
            | attributes,
            "relationships": {"webhook-topics": {"data": topic_data}},
        }
    }


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def sandbox(clock: EpochClock) -> Iterator[Sandbox]:
    with start_sandbox(clock=clock) as running:
        yield running


@pytest.fixture
def api(sandbox: Sandbox, clock: EpochClock) -> Iterator[httpx.Client]:
    """Klaviyo's headers; the clock moves STEP_S before each call."""

    def tick(request: httpx.Request) -> None:
        clock.advance(STEP_S)

    with httpx.Client(
        base_url=sandbox.base_url, headers=headers(), event_hooks={"request": [tick]}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def raw(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """Klaviyo's headers, the clock left alone."""
    with httpx.Client(base_url=sandbox.base_url, headers=headers(), timeout=10) as client:
        yield client


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_create_answers_201_with_the_webhook_and_never_its_secret(api: httpx.Client) -> None:
    body = webhook_body(topics=TOPICS[:2], description="engagement")

    created = ok(api.post("/api/webhooks", json=body), 201)["data"]

    assert created["type"] == "webhook" and len(created["id"]) == 26
    attributes = created["attributes"]
    assert attributes["name"] == "ours" and attributes["description"] == "engagement"
    assert attributes["endpoint_url"] == "https://hooks.example/webhooks/klaviyo"
    assert attributes["enabled"] is True
    assert attributes["created_at"] == attributes["updated_at"]
    assert "secret_key" not in attributes
    topics = created["relationships"]["webhook-topics"]["data"]
    assert topics == [{"type": "webhook-topic", "id": topic} for topic in TOPICS[:2]]


def test_list_read_and_delete(api: httpx.Client) -> None:
    first = ok(api.post("/api/webhooks", json=webhook_body()), 201)["data"]
    second = ok(api.post("/api/webhooks", json=webhook_body(name="other")), 201)["data"]

    listed = ok(api.get("/api/webhooks"), 200)["data"]
    assert [w["id"] for w in listed] == [first["id"], second["id"]]
    assert ok(api.get(f"/api/webhooks/{first['id']}"), 200)["data"] == first

    assert ok(api.delete(f"/api/webhooks/{first['id']}"), 204) is None
    assert [w["id"] for w in ok(api.get("/api/webhooks"), 200)["data"]] == [second["id"]]
    path = f"/api/webhooks/{first['id']}"
    for gone in (api.get(path), api.delete(path)):
        error = ok(gone, 404)["errors"][0]
        assert error["code"] == "not_found" and first["id"] in error["detail"]


def test_the_topics_are_those_the_sandbox_sends(api: httpx.Client) -> None:
    topics = ok(api.get("/api/webhook-topics"), 200)["data"]

    assert [(t["type"], t["id"]) for t in topics] == [("webhook-topic", t) for t in TOPICS]
    assert len(TOPICS) == 8 and "event:klaviyo.received_email" in TOPICS


def _without(path: list[str]) -> dict[str, Any]:
    body = webhook_body()
    parent = body
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return body


def _with(path: list[str], value: Any) -> dict[str, Any]:
    body = webhook_body()
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return body


ATTRIBUTES = ["data", "attributes"]
TOPIC_DATA = ["data", "relationships", "webhook-topics", "data"]
URL = [*ATTRIBUTES, "endpoint_url"]
URL_POINTER = "/data/attributes/endpoint_url"
TOPICS_POINTER = "/data/relationships/webhook-topics/data"
PUSH = {"type": "webhook-topic", "id": "event:klaviyo.received_push"}  # not one of TOPICS


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"data": []}, "/data"),
        (_with(["data", "type"], "hook"), "/data/type"),
        (_without([*ATTRIBUTES, "name"]), "/data/attributes/name"),
        (_with([*ATTRIBUTES, "name"], ""), "/data/attributes/name"),
        (_with([*ATTRIBUTES, "description"], 7), "/data/attributes/description"),
        (_without(URL), URL_POINTER),
        (_with(URL, "http://hooks.example/k"), URL_POINTER),
        (_with(URL, "ftp://hooks.example/k"), URL_POINTER),
        (_with(URL, "https:///k"), URL_POINTER),
        (_with(URL, "https://hooks.example:port/k"), URL_POINTER),
        (_without([*ATTRIBUTES, "secret_key"]), "/data/attributes/secret_key"),
        (_without(["data", "relationships"]), "/data/relationships"),
        (_with(TOPIC_DATA, []), TOPICS_POINTER),
        (_with(TOPIC_DATA, [{"type": "topic", "id": TOPICS[0]}]), f"{TOPICS_POINTER}/0/type"),
        (_with(TOPIC_DATA, [{"type": "webhook-topic", "id": TOPICS[0]}, PUSH]),
         f"{TOPICS_POINTER}/1/id"),
    ],
)  # fmt: skip
def test_a_bad_body_is_klaviyos_400_naming_the_pointer(
    api: httpx.Client, sandbox: Sandbox, body: dict[str, Any], pointer: str
) -> None:
    error = ok(api.post("/api/webhooks", json=body), 400)["errors"][0]

    assert (error["code"], error["source"]) == ("invalid", {"pointer": pointer})
    assert ok(api.get("/api/webhooks"), 200)["data"] == []


@pytest.mark.parametrize("host", ["127.0.0.1:8091", "localhost", "[::1]:8091"])
def test_a_loopback_endpoint_may_be_plain_http(api: httpx.Client, host: str) -> None:
    url = f"http://{host}/webhooks/klaviyo"

    created = ok(api.post("/api/webhooks", json=webhook_body(url)), 201)["data"]

    assert created["attributes"]["endpoint_url"] == url


def test_a_topic_named_twice_counts_once(api: httpx.Client) -> None:
    body = webhook_body(topics=(TOPICS[1], TOPICS[0], TOPICS[1]))

    created = ok(api.post("/api/webhooks", json=body), 201)["data"]

    topics = created["relationships"]["webhook-topics"]["data"]
    assert [t["id"] for t in topics] == [TOPICS[1], TOPICS[0]]


def test_the_webhook_endpoints_are_limited_to_1_a_second(
    raw: httpx.Client, clock: EpochClock
) -> None:
    clock.now = START + 0.5
    answers = [raw.post("/api/webhooks", json=webhook_body()), raw.get("/api/webhooks")]
    answers.append(raw.post("/api/webhooks", json=webhook_body()))

    assert [a.status_code for a in answers] == [201, 200, 429]
    assert answers[2].headers["retry-after"] == "1"
    assert answers[2].json()["errors"][0]["code"] == "throttled"
    assert answers[0].headers["ratelimit-limit"] == "15"
    assert answers[0].headers["ratelimit-remaining"] == "14"


def test_the_webhook_endpoints_are_limited_to_15_a_minute(
    raw: httpx.Client, clock: EpochClock
) -> None:
    statuses = []
    for second in range(16):
        clock.now = START + second + 0.5
        statuses.append(raw.get("/api/webhook-topics").status_code)
    refused = raw.get("/api/webhook-topics")

    assert statuses == [200] * 15 + [429]
    assert refused.headers["retry-after"] == "45"  # the minute ends 44.5 s later
    throttled = raw.get("/_sandbox/throttled").json()["buckets"]
    assert throttled["GET /api/webhook-topics"]["windows"] == {
        "1": {"limit": 1, "peak": 1},
        "60": {"limit": 15, "peak": 15},
    }
    assert throttled["GET /api/webhook-topics"]["refused"] == 2
    for endpoint in ("POST /api/webhooks", "GET /api/webhooks/{id}", "DELETE /api/webhooks/{id}"):
        assert throttled[endpoint]["windows"]["60"]["limit"] == 15


def test_without_a_key_the_webhook_endpoints_are_401(sandbox: Sandbox) -> None:
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as client:
        assert client.get("/api/webhooks", headers=headers(Authorization=None)).status_code == 401


def test_the_reset_forgets_the_webhooks(api: httpx.Client, raw: httpx.Client) -> None:
    ok(api.post("/api/webhooks", json=webhook_body()), 201)

    assert raw.delete("/_sandbox/requests").status_code == 204

    assert ok(api.get("/api/webhooks"), 200)["data"] == []


def test_create_webhook_bodies_are_recorded_like_any_request(api: httpx.Client) -> None:
    body = copy.deepcopy(webhook_body())
    ok(api.post("/api/webhooks", json=body), 201)

    (recorded,) = api.get("/_sandbox/requests", params={"path": "/api/webhooks"}).json()

    assert (recorded["endpoint"], recorded["body"]) == ("POST /api/webhooks", body)
