"""The Klaviyo sandbox's catalogue endpoints: campaigns (planted with their figures), the
simulated flows and the metrics events made, in Klaviyo's shapes; get_campaigns' required
channel filter; the values reports over them; and their limits (reports 1/s, 2/min, 225/day)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.sandbox.klaviyo.catalogue import flow_id, metric_id
from tests.dispatcher.helpers import EpochClock, headers

START = 1_800_000_000.0
SUMMER = {
    "name": "Summer sale",
    "statistics": {"recipients": 200, "delivered": 190, "opens_unique": 95, "clicks_unique": 19},
}
WELCOME = {
    "name": "Welcome",
    "trigger_metric": "Placed Order",
    "messages": [{"delay_s": 0, "subject": "Thanks"}, {"delay_s": 60, "subject": "Again"}],
}


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def sandbox(clock: EpochClock) -> Iterator[Sandbox]:
    with start_sandbox(clock=clock) as running:
        yield running


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, headers=headers(), timeout=10) as client:
        yield client


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _plant(http: httpx.Client, *campaigns: dict[str, Any]) -> list[dict[str, Any]]:
    planted: list[dict[str, Any]] = _ok(
        http.post("/_sandbox/campaigns", json=list(campaigns)), 201
    )["data"]
    return planted


def _order(http: httpx.Client, email: str = "ada@example.com") -> None:
    """An event of "Placed Order": the metric exists from then on (and Welcome starts)."""
    event = {
        "data": {
            "type": "event",
            "attributes": {
                "properties": {},
                "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
                "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
            },
        }
    }
    assert http.post("/api/events", json=event).status_code == 202


def _report(kind: str, **attributes: Any) -> dict[str, Any]:
    given = {
        "statistics": ["recipients", "delivered", "opens_unique", "open_rate", "click_rate"],
        "timeframe": {"key": "last_365_days"},
        "conversion_metric_id": metric_id("Placed Order"),
    }
    return {"data": {"type": kind, "attributes": given | attributes}}


def _campaigns(http: httpx.Client, channel: str, **params: str) -> httpx.Response:
    return http.get(
        "/api/campaigns", params={"filter": f'equals(messages.channel,"{channel}")'} | params
    )


def test_campaigns_are_listed_by_channel_in_klaviyos_shape(http: httpx.Client) -> None:
    (summer, draft) = _plant(http, SUMMER, {"name": "Text us", "channel": "sms", "status": "Draft"})

    email = _ok(_campaigns(http, "email"))
    sms = _ok(http.get("/api/campaigns", params={"filter": "equals(messages.channel,'sms')"}))

    (resource,) = email["data"]
    assert resource["type"] == "campaign" and resource["id"] == summer["id"]
    assert len(resource["id"]) == 26
    attributes = resource["attributes"]
    assert (attributes["name"], attributes["status"], attributes["archived"]) == (
        "Summer sale",
        "Sent",
        False,
    )
    assert attributes["send_time"].startswith("2027-01-15T08:00:00")  # START, in UTC
    assert set(attributes) >= {"audiences", "send_options", "tracking_options", "created_at"}
    message = resource["relationships"]["campaign-messages"]["data"][0]
    assert message == {"type": "campaign-message", "id": summer["message_id"]}
    assert [r["id"] for r in sms["data"]] == [draft["id"]]
    assert sms["data"][0]["attributes"]["send_time"] is None


def test_get_campaigns_needs_the_channel_filter(http: httpx.Client) -> None:
    for params in (
        {},
        {"filter": 'equals(status,"Sent")'},
        {"filter": 'equals(messages.channel,"fax")'},
        {"filter": 'contains(messages.channel,"email")'},
    ):
        refused = http.get("/api/campaigns", params=params)
        assert refused.status_code == 400, params
        (error,) = refused.json()["errors"]
        assert error["source"] == {"parameter": "filter"}


def test_campaigns_filter_and_page(http: httpx.Client) -> None:
    _plant(http, *({"name": f"C{n}", "status": "Sent" if n % 2 else "Draft"} for n in range(5)))
    both = 'and(equals(messages.channel,"email"),equals(status,"Sent"))'
    sent = _ok(http.get("/api/campaigns", params={"filter": both}))
    first = _ok(_campaigns(http, "email", **{"page[size]": "2"}))
    second = _ok(http.get(first["links"]["next"]))

    assert [r["attributes"]["name"] for r in sent["data"]] == ["C1", "C3"]
    assert [r["attributes"]["name"] for r in first["data"] + second["data"]] == [
        "C0",
        "C1",
        "C2",
        "C3",
    ]
    assert _campaigns(http, "email", **{"page[size]": "101"}).status_code == 400


def test_flows_and_metrics_are_the_sandboxs_own(http: httpx.Client) -> None:
    assert _ok(http.post("/_sandbox/flows", json=WELCOME), 201)[0]["id"] == flow_id("Welcome")
    assert _ok(http.get("/api/metrics"))["data"] == []
    _order(http)

    (flow,) = _ok(http.get("/api/flows"))["data"]
    (metric,) = _ok(http.get("/api/metrics"))["data"]

    assert flow["type"] == "flow" and flow["id"] == flow_id("Welcome")
    assert {k: flow["attributes"][k] for k in ("name", "status", "archived", "trigger_type")} == {
        "name": "Welcome",
        "status": "live",
        "archived": False,
        "trigger_type": "Metric",
    }
    assert (metric["id"], metric["attributes"]["name"]) == (
        metric_id("Placed Order"),
        "Placed Order",
    )
    assert metric["attributes"]["integration"]["category"] == "API"
    refused = http.get("/api/metrics", params={"page[size]": "10"})
    assert refused.status_code == 400  # get_metrics takes page[cursor] only
    assert http.get("/api/flows", params={"page[size]": "51"}).status_code == 400


def test_a_campaign_values_report_sums_each_campaigns_figures(http: httpx.Client) -> None:
    (summer, *_) = _plant(http, SUMMER, {"name": "Not sent", "status": "Draft"})
    _order(http)

    report = _ok(http.post("/api/campaign-values-reports", json=_report("campaign-values-report")))

    data = report["data"]
    assert data["type"] == "campaign-values-report"
    (result,) = data["attributes"]["results"]
    assert result["groupings"] == {
        "campaign_id": summer["id"],
        "campaign_message_id": summer["message_id"],
        "send_channel": "email",
    }
    assert result["statistics"] == {
        "recipients": 200,
        "delivered": 190,
        "opens_unique": 95,
        "open_rate": 0.5,
        "click_rate": 0.1,
    }
    assert data["relationships"]["campaigns"]["data"] == [{"type": "campaign", "id": summer["id"]}]


def test_a_report_counts_only_its_timeframe(http: httpx.Client, clock: EpochClock) -> None:
    _plant(http, SUMMER | {"send_time": "2026-12-01T00:00:00+00:00"})  # 45 days before START
    _order(http)
    week = _report("campaign-values-report", timeframe={"key": "last_7_days"})

    assert _ok(http.post("/api/campaign-values-reports", json=week))["data"]["attributes"] == {
        "results": []
    }


def test_a_flow_values_report_counts_the_flows_messages_sent(
    sandbox: Sandbox, http: httpx.Client, clock: EpochClock
) -> None:
    _ok(http.post("/_sandbox/flows", json=WELCOME), 201)
    _order(http, "ada@example.com")
    _order(http, "bob@example.com")
    clock.advance(120)  # the second messages fall due
    sandbox.messages()

    report = _ok(http.post("/api/flow-values-reports", json=_report("flow-values-report")))

    results = report["data"]["attributes"]["results"]
    assert {r["groupings"]["flow_id"] for r in results} == {flow_id("Welcome")}
    assert len({r["groupings"]["flow_message_id"] for r in results}) == 2
    assert [r["statistics"]["recipients"] for r in results] == [2, 2]


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"statistics": []}, "/data/attributes/statistics"),
        ({"statistics": ["recipients", "opens_per_day"]}, "/data/attributes/statistics/1"),
        ({"timeframe": {"key": "last_2_years"}}, "/data/attributes/timeframe/key"),
        (
            {"timeframe": {"start": "2025-01-01T00:00:00", "end": "2026-06-01T00:00:00"}},
            "/data/attributes/timeframe",
        ),
        ({"conversion_metric_id": None}, "/data/attributes/conversion_metric_id"),
        ({"conversion_metric_id": "NoSuch"}, "/data/attributes/conversion_metric_id"),
        ({"group_by": ["campaign_id"]}, "/data/attributes/group_by"),
        ({"filter": "equals(tag_name,'x')"}, "/data/attributes/filter"),
    ],
)
def test_a_bad_report_is_refused_with_a_pointer(
    http: httpx.Client, attributes: dict[str, Any], pointer: str
) -> None:
    _order(http)
    refused = http.post(
        "/api/campaign-values-reports", json=_report("campaign-values-report", **attributes)
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["errors"][0]["source"] == {"pointer": pointer}


def test_a_report_filter_and_group_by_are_applied(http: httpx.Client) -> None:
    (summer, other) = _plant(http, SUMMER, {"name": "Other", "statistics": {"recipients": 5}})
    _order(http)
    only = _report(
        "campaign-values-report",
        statistics=["recipients"],
        group_by=["campaign_id", "campaign_message_id"],
        filter=f'and(equals(campaign_id,"{other["id"]}"),contains-any(send_channel,["email"]))',
    )

    (result,) = _ok(http.post("/api/campaign-values-reports", json=only))["data"]["attributes"][
        "results"
    ]
    assert result == {
        "groupings": {"campaign_id": other["id"], "campaign_message_id": other["message_id"]},
        "statistics": {"recipients": 5},
    }
    assert summer["id"] != other["id"]


def test_the_reports_allow_one_call_a_second_and_two_a_minute(
    sandbox: Sandbox, http: httpx.Client, clock: EpochClock
) -> None:
    _order(http)
    body = _report("campaign-values-report")

    def status() -> int:
        return http.post("/api/campaign-values-reports", json=body).status_code

    first, same_second = status(), status()
    clock.advance(1)
    second = status()
    clock.advance(1)
    third = status()  # the minute's two are spent
    throttled = http.post("/api/campaign-values-reports", json=body)
    flows = http.post("/api/flow-values-reports", json=_report("flow-values-report")).status_code
    clock.advance(60)
    next_minute = status()

    assert (first, same_second, second, third, flows, next_minute) == (200, 429, 200, 429, 200, 200)
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert "RateLimit-Limit" not in throttled.headers
    buckets = sandbox.throttled()
    assert any("campaign-values-reports" in str(b) for b in buckets.values())


def test_the_reports_allow_225_calls_a_day(http: httpx.Client, clock: EpochClock) -> None:
    _order(http)
    body = _report("flow-values-report")
    answers = []
    for _ in range(226):
        answers.append(http.post("/api/flow-values-reports", json=body).status_code)
        clock.advance(30)  # two a minute, at most
    assert answers[:225] == [200] * 225 and answers[225] == 429
