"""Both sandboxes answer the shared control endpoints in one shape: the request log, faults and
GET /_sandbox/throttled (whose `total` the benchmark reads)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from dispatcher.sandbox import start_sandbox
from dispatcher.sandbox.activecampaign import start_activecampaign_sandbox
from dispatcher.sandbox.common.running import RunningServer
from tests.dispatcher.helpers import EpochClock, headers

START = 1_800_000_000.25  # a quarter into an epoch second
ERASE = "/api/data-privacy-deletion-jobs"  # Klaviyo: 3 a second
AUTOMATIONS = "/api/3/automations"  # ActiveCampaign: 5 a second over every /api/3 call
REQUEST_KEYS = {"seq", "method", "path", "query", "endpoint", "received_at", "received_s"}
ANSWER_KEYS = {"method", "path", "endpoint", "bucket", "window_s", "status", "retry_after"}


def _erasure() -> bytes:
    profile = {"type": "profile", "attributes": {"email": "ada@example.com"}}
    job = {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": profile}}}
    return json.dumps({"data": job}).encode()


def _klaviyo_call(http: httpx.Client) -> httpx.Response:
    return http.post(ERASE, content=_erasure(), headers=headers())


def _activecampaign_call(http: httpx.Client) -> httpx.Response:
    return http.get(AUTOMATIONS, headers={"Api-Token": "any"})


@pytest.fixture(params=["klaviyo", "activecampaign"])
def provider(request: pytest.FixtureRequest) -> Iterator[tuple[httpx.Client, str, int]]:
    """A client of one sandbox, the path it calls and how many calls one second admits."""
    clock = EpochClock(START)
    running: RunningServer
    if request.param == "klaviyo":
        running, path, limit = start_sandbox(clock=clock), ERASE, 3
    else:
        running, path, limit = start_activecampaign_sandbox(clock=clock), AUTOMATIONS, 5
    with running, httpx.Client(base_url=running.base_url, timeout=10) as http:
        yield http, path, limit


def _call(http: httpx.Client, path: str) -> httpx.Response:
    return _klaviyo_call(http) if path == ERASE else _activecampaign_call(http)


def test_throttled_counts_refusals_in_total_per_bucket_and_per_answer(
    provider: tuple[httpx.Client, str, int],
) -> None:
    http, path, limit = provider
    statuses = [_call(http, path).status_code for _ in range(limit + 2)]

    report = http.get("/_sandbox/throttled").json()

    assert statuses.count(429) == 2
    assert set(report) == {"total", "buckets", "answers"}
    assert report["total"] == 2
    assert sum(bucket["refused"] for bucket in report["buckets"].values()) == 2
    assert [set(answer) - {"received_at"} for answer in report["answers"]] == [ANSWER_KEYS] * 2
    (bucket,) = {answer["bucket"] for answer in report["answers"]}
    assert report["buckets"][bucket]["windows"]["1"] == {"limit": limit, "peak": limit}
    assert all(a["path"] == path and a["window_s"] == 1 for a in report["answers"])


def test_requests_faults_and_forgetting_are_the_same_in_both(
    provider: tuple[httpx.Client, str, int],
) -> None:
    http, path, _ = provider
    queued = http.post("/_sandbox/faults", json={"path": path, "status": 503})
    faulted, accepted = _call(http, path), _call(http, path)

    (recorded,) = http.get("/_sandbox/requests", params={"path": path}).json()
    (rejected,) = http.get("/_sandbox/rejections").json()
    assert (queued.status_code, faulted.status_code, accepted.status_code // 100) == (201, 503, 2)
    assert set(recorded) >= REQUEST_KEYS and recorded["path"] == path
    assert recorded["endpoint"] == ("POST " if path == ERASE else "GET ") + path
    assert (rejected["path"], rejected["status"], rejected["endpoint"]) == (
        path,
        503,
        recorded["endpoint"],
    )
    assert http.get("/_sandbox/throttled").json()["total"] == 0, "a fault is no rate limit"
    assert http.delete("/_sandbox/requests").status_code == 204
    assert http.get("/_sandbox/requests").json() == []
    assert http.get("/_sandbox/rejections").json() == []
    assert http.get("/_sandbox/faults").json() == []
    assert http.get("/_sandbox/health").json() == {"status": "ok"}
