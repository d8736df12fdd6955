"""Api-Token auth, the account's 5 requests/s (429 + Retry-After, epoch-aligned windows,
whatever the key), event tracking's own bucket, the switch that lifts limits, and faults."""

from __future__ import annotations

import httpx
import pytest

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox, start_activecampaign_sandbox
from tests.dispatcher.helpers import EpochClock
from tests.dispatcher.sandbox.activecampaign.conftest import (
    ACTID,
    API_KEY,
    TRACKING_KEY,
    answer,
)

TOKEN = {"Api-Token": API_KEY}
FORBIDDEN = {"message": "Forbidden"}


@pytest.mark.parametrize("headers", [{}, {"Api-Token": ""}, {"Api-Token": "wrong"}])
def test_a_missing_or_wrong_api_token_is_403_forbidden(
    raw: httpx.Client, headers: dict[str, str]
) -> None:
    assert answer(raw.get("/api/3/contacts", headers=headers), 403) == FORBIDDEN
    assert raw.get("/_sandbox/requests").json() == []


def test_without_a_configured_key_any_token_is_the_accounts(clock: EpochClock) -> None:
    with start_activecampaign_sandbox(clock=clock) as open_sandbox:
        url = f"{open_sandbox.base_url}/api/3/automations"
        assert httpx.get(url, headers={"Api-Token": "anything"}).status_code == 200
        assert httpx.get(url).status_code == 403


def test_unknown_paths_are_404_and_wrong_methods_405(raw: httpx.Client) -> None:
    assert answer(raw.get("/api/3/nothing", headers=TOKEN), 404) == {"message": "Not Found"}
    refused = raw.patch("/api/3/contacts", headers=TOKEN)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET"


def test_the_sixth_call_in_an_epoch_second_is_429_with_retry_after(
    raw: httpx.Client, ac: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    clock.advance(0.3)
    statuses = [raw.get("/api/3/automations", headers=TOKEN).status_code for _ in range(5)]
    refused = raw.get("/api/3/automations", headers=TOKEN)

    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    clock.advance(0.7)  # the next epoch second
    assert raw.get("/api/3/automations", headers=TOKEN).status_code == 200
    throttled = ac.throttled()
    assert throttled["total"] == 1
    assert [(t["status"], t["bucket"], t["retry_after"]) for t in throttled["answers"]] == [
        (429, "api", 1)
    ]
    assert throttled["answers"][0]["endpoint"] == "GET /api/3/automations"
    assert throttled["buckets"]["api"] == {
        "refused": 1,
        "windows": {"1": {"limit": 5, "peak": 5}},
    }


def test_every_key_and_every_answer_draws_from_the_one_account_budget(raw: httpx.Client) -> None:
    for headers in ({"Api-Token": "wrong"}, {}, TOKEN, TOKEN, TOKEN):
        assert raw.get("/api/3/automations", headers=headers).status_code in (200, 403)

    assert raw.get("/api/3/automations", headers={"Api-Token": "other"}).status_code == 429


def test_windows_are_aligned_to_epoch_seconds(raw: httpx.Client, clock: EpochClock) -> None:
    clock.advance(0.9)
    for _ in range(5):
        assert raw.get("/api/3/automations", headers=TOKEN).status_code == 200
    clock.advance(0.2)  # 0.2 s later, but a new epoch second
    assert raw.get("/api/3/automations", headers=TOKEN).status_code == 200


def test_event_tracking_has_its_own_bucket(raw: httpx.Client, ac: ActiveCampaignSandbox) -> None:
    form = {"actid": ACTID, "key": TRACKING_KEY, "event": "viewed"}
    for _ in range(5):
        assert raw.get("/api/3/automations", headers=TOKEN).status_code == 200
    statuses = [raw.post("/event", data=form).status_code for _ in range(6)]

    assert statuses == [200] * 5 + [429]
    buckets = ac.throttled()["buckets"]
    assert (buckets["api"]["windows"]["1"]["peak"], buckets["event"]["windows"]["1"]) == (
        5,
        {"limit": 5, "peak": 5},
    )
    assert (buckets["api"]["refused"], buckets["event"]["refused"]) == (0, 1)


def test_rate_limits_off_admits_any_rate(clock: EpochClock) -> None:
    with start_activecampaign_sandbox(api_key=API_KEY, rate_limits=False, clock=clock) as sandbox:
        with httpx.Client(base_url=sandbox.base_url, headers=TOKEN) as client:
            statuses = {client.get("/api/3/automations").status_code for _ in range(20)}
        assert statuses == {200}
        throttled = sandbox.throttled()
        assert (throttled["total"], throttled["answers"]) == (0, [])
        assert throttled["buckets"]["api"]["windows"] == {"1": {"limit": 5, "peak": 20}}


def test_a_fault_answers_its_status_then_calls_go_through(raw: httpx.Client) -> None:
    fault = {"path": "/api/3/automations", "status": 503, "times": 2, "retry_after": 7}
    assert raw.post("/_sandbox/faults", json=fault).status_code == 201

    first, second, third = (raw.get("/api/3/automations", headers=TOKEN) for _ in range(3))

    assert (first.status_code, first.headers["retry-after"], first.json()) == (503, "7", {})
    assert second.status_code == 503
    assert third.status_code == 200
    assert raw.get("/_sandbox/faults").json() == []


def test_a_429_fault_has_a_retry_after_and_a_detail_becomes_the_message(
    raw: httpx.Client,
) -> None:
    raw.post("/_sandbox/faults", json={"status": 429, "detail": "Slow down"})

    refused = raw.get("/api/3/automations", headers=TOKEN)

    assert (refused.status_code, refused.headers["retry-after"]) == (429, "1")
    assert refused.json() == {"message": "Slow down"}


def test_an_invalid_fault_is_refused(raw: httpx.Client) -> None:
    assert raw.post("/_sandbox/faults", json={"status": 200}).status_code == 400
    assert raw.post("/_sandbox/faults", json={"colour": "red"}).status_code == 400
    assert raw.get("/_sandbox/faults").json() == []


def test_a_latency_only_fault_delays_but_answers(
    raw: httpx.Client, ac: ActiveCampaignSandbox
) -> None:
    raw.post("/_sandbox/faults", json={"path": "/api/3/automations", "latency_ms": 20})

    assert raw.get("/api/3/automations", headers=TOKEN).status_code == 200
    assert raw.get("/_sandbox/faults").json() == []
    assert len(ac.requests("/api/3/automations")) == 1
