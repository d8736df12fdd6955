"""The sandbox's rate limits: Klaviyo's per-endpoint windows, per API key, on a virtual clock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.providers.klaviyo.limits import RATES
from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.sandbox.common.windows import RateWindow, Refusal
from dispatcher.sandbox.klaviyo.rates import DAY, RATE_LIMITS, Admitted, RateLimiter
from tests.dispatcher.helpers import API_KEY, EpochClock, headers

ERASE = "/api/data-privacy-deletion-jobs"  # 3/s, 60/min: the smallest windows served
ERASE_ENDPOINT = f"POST {ERASE}"
EVENTS = "/api/events"
ROOT = Path(__file__).resolve().parents[4]
START = 1_800_000_000.0  # a whole minute (and second) of epoch time


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def limited(clock: EpochClock) -> Iterator[Sandbox]:
    with start_sandbox(clock=clock) as running:
        yield running


@pytest.fixture
def client(limited: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited.base_url, timeout=10) as http:
        yield http


def erasure(email: str) -> dict[str, Any]:
    profile = {"type": "profile", "attributes": {"email": email}}
    return {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {"profile": {"data": profile}},
        }
    }


def erase(http: httpx.Client, email: str = "ada@example.com", key: str = API_KEY) -> httpx.Response:
    auth = f"Klaviyo-API-Key {key}"
    return http.post(ERASE, content=json.dumps(erasure(email)), headers=headers(Authorization=auth))


def statuses(responses: list[httpx.Response]) -> list[int]:
    return [response.status_code for response in responses]


def test_the_burst_window_admits_its_limit_then_answers_klaviyos_429(
    limited: Sandbox, client: httpx.Client, clock: EpochClock
) -> None:
    clock.now = START + 0.25
    answers = [erase(client, f"p{i}@example.com") for i in range(4)]

    assert statuses(answers) == [202, 202, 202, 429]
    refused = answers[3]
    assert refused.headers["retry-after"] == "1"  # 0.75 s left in the second, rounded up
    assert not [name for name in refused.headers if name.lower().startswith("ratelimit")]
    body = refused.json()
    error_id = body["errors"][0].pop("id")
    assert len(error_id) == 36
    assert body == {
        "errors": [
            {
                "status": 429,
                "code": "throttled",
                "title": "Request was throttled.",
                "detail": "Request was throttled. Expected available in 1 seconds.",
                "source": {},
            }
        ]
    }
    assert [r["body"] for r in limited.requests()] == [
        erasure(f"p{i}@example.com") for i in range(3)
    ]
    assert [(r["status"], r["code"]) for r in limited.rejections()] == [(429, "throttled")]


def test_successes_carry_the_steady_window_in_ratelimit_headers(
    client: httpx.Client, clock: EpochClock
) -> None:
    clock.now = START + 42.5
    first, second = erase(client), erase(client)

    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("60", "59")
    assert second.headers["ratelimit-remaining"] == "58"
    assert second.headers["ratelimit-reset"] == "18"  # 17.5 s to the minute's end, rounded up


def test_windows_are_aligned_to_epoch_time_not_to_the_first_call(
    client: httpx.Client, clock: EpochClock
) -> None:
    clock.now = START + 0.9
    assert statuses([erase(client) for _ in range(4)]) == [202, 202, 202, 429]
    clock.now = START + 1.0  # 0.1 s after the first call, but a new second
    assert statuses([erase(client) for _ in range(4)]) == [202, 202, 202, 429]


def test_a_call_counts_when_it_arrives_not_after_the_sandboxs_own_work(
    limited: Sandbox, client: httpx.Client, clock: EpochClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before serving a request the sandbox applies the import jobs finished by then,
    which on a busy machine takes a good part of a second. A call that came in during
    one second counts in that second, as Klaviyo counts it on arrival; counted after
    that work it would take a place of the next second, which the dispatcher's budget
    gave to other calls."""
    settle = limited.state.settle

    def settle_slowly() -> None:  # the first time: a large job, the clock moving on meanwhile
        monkeypatch.setattr(limited.state, "settle", settle)
        clock.now = START + 1.2
        settle()

    clock.now = START + 0.9
    monkeypatch.setattr(limited.state, "settle", settle_slowly)
    slow = erase(client, "slow@example.com")
    next_second = [erase(client, f"n{i}@example.com") for i in range(4)]

    assert statuses([slow, *next_second]) == [202, 202, 202, 202, 429]
    assert limited.requests()[0]["received_s"] == START + 0.9


def test_the_steady_window_refuses_until_the_minute_ends_and_refusals_are_not_counted(
    limited: Sandbox, client: httpx.Client, clock: EpochClock
) -> None:
    for second in range(20):  # 3 a second: 60 in the first 20 seconds of the minute
        clock.now = START + second
        assert statuses([erase(client) for _ in range(3)]) == [202] * 3
    clock.now = START + 20.5
    refused = [erase(client) for _ in range(5)]

    assert statuses(refused) == [429] * 5
    assert {r.headers["retry-after"] for r in refused} == {"40"}  # 39.5 s to the minute's end
    assert len(limited.requests(ERASE)) == 60
    clock.now = START + 60
    assert statuses([erase(client) for _ in range(4)]) == [202, 202, 202, 429]
    report = limited.throttled()
    assert report["total"] == 6
    assert report["buckets"][ERASE_ENDPOINT] == {
        "refused": 6,
        "windows": {"1": {"limit": 3, "peak": 3}, "60": {"limit": 60, "peak": 60}},
    }


def test_windows_are_per_endpoint_and_per_api_key(client: httpx.Client, clock: EpochClock) -> None:
    assert statuses([erase(client) for _ in range(4)]) == [202, 202, 202, 429]

    other_key = [erase(client, key="pk_other_account") for _ in range(4)]
    event = client.post(EVENTS, content=json.dumps(_event()), headers=headers())

    assert statuses(other_key) == [202, 202, 202, 429]
    assert event.status_code == 202, "another endpoint has windows of its own"


def test_a_path_template_is_one_endpoint_whatever_the_id(
    limited: Sandbox, client: httpx.Client
) -> None:
    answers = [
        client.get(f"/api/profile-bulk-import-jobs/job{i}", headers=headers()) for i in range(11)
    ]

    assert statuses(answers) == [404] * 10 + [429], "a 404 still counts; the 11th is refused"
    report = limited.throttled()
    assert report["buckets"]["GET /api/profile-bulk-import-jobs/{id}"]["refused"] == 1
    (answer,) = report["answers"]
    assert (answer["path"], answer["bucket"], answer["window_s"], answer["status"]) == (
        "/api/profile-bulk-import-jobs/job10",
        "GET /api/profile-bulk-import-jobs/{id}",
        1,
        429,
    )


def test_without_rate_limits_nothing_is_refused_but_peaks_are_reported(clock: EpochClock) -> None:
    with (
        start_sandbox(clock=clock, rate_limits=False) as unlimited,
        httpx.Client(base_url=unlimited.base_url) as http,
    ):
        answers = [erase(http, f"p{i}@example.com") for i in range(10)]
        report = http.get("/_sandbox/throttled").json()

    assert statuses(answers) == [202] * 10
    assert report["total"] == 0
    assert report["buckets"][ERASE_ENDPOINT] == {
        "refused": 0,
        "windows": {"1": {"limit": 3, "peak": 10}, "60": {"limit": 60, "peak": 10}},
    }


def test_a_queued_429_fault_keeps_its_retry_after_even_zero(
    limited: Sandbox, client: httpx.Client
) -> None:
    limited.add_fault(path=ERASE, status=429, retry_after=0)

    refused = erase(client)

    assert (refused.status_code, refused.headers["retry-after"]) == (429, "0")
    assert refused.json()["errors"][0]["code"] == "throttled"
    assert erase(client).status_code == 202


def test_the_throttled_report_over_http_lists_every_served_endpoint(
    client: httpx.Client, clock: EpochClock
) -> None:
    [erase(client) for _ in range(5)]

    report = client.get("/_sandbox/throttled").json()

    buckets = report["buckets"]
    assert set(buckets) == set(RATE_LIMITS)
    assert report["total"] == 2
    assert buckets[ERASE_ENDPOINT]["refused"] == 2
    assert buckets[ERASE_ENDPOINT]["windows"]["1"]["peak"] == 3
    assert buckets["POST /api/events"]["windows"]["1"] == {"limit": 350, "peak": 0}
    assert client.delete("/_sandbox/requests").status_code == 204
    cleared = client.get("/_sandbox/throttled").json()
    assert (cleared["total"], cleared["buckets"][ERASE_ENDPOINT]["refused"]) == (0, 0)
    assert cleared["buckets"][ERASE_ENDPOINT]["windows"]["1"]["peak"] == 0


def test_recorded_requests_carry_method_path_and_arrival_time(
    limited: Sandbox, client: httpx.Client, clock: EpochClock
) -> None:
    clock.now = START + 7.25
    erase(client)

    (recorded,) = limited.requests()
    assert (recorded["method"], recorded["path"], recorded["endpoint"]) == (
        "POST",
        ERASE,
        ERASE_ENDPOINT,
    )
    assert recorded["received_s"] == START + 7.25
    assert recorded["received_at"] == "2027-01-15T08:00:07.250000+00:00"


def test_a_daily_window_refuses_until_the_utc_day_ends() -> None:
    clock = EpochClock(DAY * 20_000 + DAY - 100.5)  # 100.5 s before midnight UTC
    daily = RateWindow("POST /x", 4, DAY)
    table = {"POST /x": (RateWindow("POST /x", 2, 1), RateWindow("POST /x", 100, 60), daily)}
    limiter = RateLimiter(clock, table=table)
    answers = []
    for _ in range(3):
        answers += [limiter.admit("k", "POST /x") for _ in range(2)]
        clock.now += 1

    assert [type(a) for a in answers] == [Admitted] * 4 + [Refusal] * 2
    assert answers[4] == Refusal(daily, retry_after=99)  # 98.5 s to midnight, rounded up
    clock.now += 60  # 37.5 s to midnight
    assert limiter.admit("k", "POST /x") == Refusal(daily, retry_after=38)
    clock.now += 37.5
    assert isinstance(limiter.admit("k", "POST /x"), Admitted)
    assert limiter.windows.peaks()["POST /x"][str(DAY)] == {"limit": 4, "peak": 4}


def test_retry_after_is_the_longest_of_the_exceeded_windows() -> None:
    clock = EpochClock(START + 59.5)
    second, minute = RateWindow("POST /x", 1, 1), RateWindow("POST /x", 1, 60)
    limiter = RateLimiter(clock, table={"POST /x": (second, minute)})

    assert isinstance(limiter.admit("k", "POST /x"), Admitted)
    refused = limiter.admit("k", "POST /x")
    assert isinstance(refused, Refusal) and refused.retry_after == 1  # both end in 0.5 s
    clock.now = START + 60.2
    assert isinstance(limiter.admit("k", "POST /x"), Admitted)
    clock.now = START + 61.2
    assert limiter.admit("k", "POST /x") == Refusal(minute, retry_after=59)


def test_the_reset_is_counted_from_the_moment_the_call_was() -> None:
    """A call counted in a minute's last instant says that minute ends in 1 s, however
    late its answer is made (a clock read again after the count said 60)."""
    readings = iter([START + 59.9995])

    def clock() -> float:
        return next(readings, START + 60.0005)

    limiter = RateLimiter(clock, table={"POST /x": (RateWindow("POST /x", 5, 60),)})
    admitted = limiter.admit("k", "POST /x")

    assert admitted == Admitted(limit=5, remaining=4, reset_s=1)


def test_an_endpoint_without_limits_is_not_counted() -> None:
    assert RateLimiter(EpochClock(START)).admit("k", "GET /api/unknown") is None


# The client's table (dispatcher/providers/klaviyo/limits.py) names each bucket after the
# endpoint it draws from; the sandbox states Klaviyo's limits on its own.
CLIENT_BUCKET_ENDPOINTS = {
    "profile-import": "POST /api/profile-import",
    "push-tokens": "POST /api/push-tokens",
    "push-tokens/{id} (delete)": "DELETE /api/push-tokens/{id}",
    "events": "POST /api/events",
    "event-bulk-create-jobs": "POST /api/event-bulk-create-jobs",
    "profile-subscription-bulk-create-jobs": "POST /api/profile-subscription-bulk-create-jobs",
    "profile-subscription-bulk-delete-jobs": "POST /api/profile-subscription-bulk-delete-jobs",
    "profile-suppression-bulk-create-jobs": "POST /api/profile-suppression-bulk-create-jobs",
    "profile-suppression-bulk-delete-jobs": "POST /api/profile-suppression-bulk-delete-jobs",
    "data-privacy-deletion-jobs": "POST /api/data-privacy-deletion-jobs",
    "profile-bulk-import-jobs": "POST /api/profile-bulk-import-jobs",
    "profile-bulk-import-jobs/{id}": "GET /api/profile-bulk-import-jobs/{id}",
    "profile-bulk-import-jobs/{id}/import-errors": (
        "GET /api/profile-bulk-import-jobs/{id}/import-errors"
    ),
    "profiles": "GET /api/profiles",
    "profiles/{id}/lists": "GET /api/profiles/{id}/lists",
    "lists": "GET /api/lists",
    "lists (create)": "POST /api/lists",
    "lists/{id}/relationships/profiles (add)": "POST /api/lists/{id}/relationships/profiles",
    "lists/{id}/relationships/profiles (remove)": "DELETE /api/lists/{id}/relationships/profiles",
    "campaigns": "GET /api/campaigns",
    "campaigns/{id}": "GET /api/campaigns/{id}",
    "campaigns (create)": "POST /api/campaigns",
    "campaign-message-assign-template": "POST /api/campaign-message-assign-template",
    "campaign-send-jobs": "POST /api/campaign-send-jobs",
    "templates (create)": "POST /api/templates",
    "templates/{id} (delete)": "DELETE /api/templates/{id}",
    "flows": "GET /api/flows",
    "metrics": "GET /api/metrics",
    "campaign-values-reports": "POST /api/campaign-values-reports",
    "flow-values-reports": "POST /api/flow-values-reports",
}


def test_the_clients_rate_table_is_klaviyos() -> None:
    for operation, buckets in RATES.items():
        for bucket in buckets:
            endpoint = CLIENT_BUCKET_ENDPOINTS[bucket.name]
            stated = {(w.limit, w.seconds) for w in RATE_LIMITS[endpoint]}
            client = {(w.calls, int(w.seconds)) for w in bucket.windows}
            assert client == stated, f"{operation}: {bucket.name}"


@pytest.mark.parametrize(("value", "limited"), [("off", False), ("on", True), (None, True)])
def test_python_m_dispatcher_sandbox_takes_the_rate_limit_switch(
    value: str | None, limited: bool
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"MARKETING_SANDBOX_ADDRESS": f"127.0.0.1:{port}"}
    env.pop("MARKETING_SANDBOX_RATE_LIMITS", None)
    if value is not None:
        env["MARKETING_SANDBOX_RATE_LIMITS"] = value
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.sandbox"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert "listening on" in process.stderr.readline()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            answers = [erase(http, f"p{i}@example.com") for i in range(8)]
        # 8 calls straddle at most two 1-second windows of 3: some are refused when limited.
        assert (429 in statuses(answers)) is limited
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_python_m_dispatcher_sandbox_refuses_an_unknown_switch_value() -> None:
    env = os.environ | {"MARKETING_SANDBOX_RATE_LIMITS": "sometimes"}
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher.sandbox"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode != 0
    assert "rate_limits" in done.stderr


def _event() -> dict[str, Any]:
    attributes = {
        "properties": {},
        "metric": {"data": {"type": "metric", "attributes": {"name": "viewed_product"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "ada@example.com"}}},
    }
    return {"data": {"type": "event", "attributes": attributes}}
