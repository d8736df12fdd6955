"""The sandbox over raw HTTP: Klaviyo's checks and error bodies, recordings, faults, entry point."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.sandbox import Sandbox, SandboxState, Throttle
from tests.dispatcher.helpers import headers

SUPPRESS = "/api/profile-suppression-bulk-create-jobs"
EVENTS = "/api/events"
ROOT = Path(__file__).resolve().parents[2]


def suppression(*emails: str) -> dict[str, Any]:
    profiles = [{"type": "profile", "attributes": {"email": e}} for e in emails]
    return {
        "data": {
            "type": "profile-suppression-bulk-create-job",
            "attributes": {"profiles": {"data": profiles}},
        }
    }


def one_event(unique_id: str, **attributes: Any) -> dict[str, Any]:
    values = {
        "properties": {},
        "metric": {"data": {"type": "metric", "attributes": {"name": "viewed_product"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "ada@example.com"}}},
        "unique_id": unique_id,
    }
    return {"data": {"type": "event", "attributes": values | attributes}}


def post(
    http: httpx.Client, path: str, body: Any, **header_overrides: str | None
) -> httpx.Response:
    return http.post(path, content=json.dumps(body), headers=headers(**header_overrides))


def only_error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/vnd.api+json"
    errors: list[dict[str, Any]] = response.json()["errors"]
    assert len(errors) == 1
    assert set(errors[0]) >= {"id", "status", "code", "title", "detail"}
    assert errors[0]["status"] == response.status_code
    return errors[0]


# --- Klaviyo's checks --------------------------------------------------------------------


def test_an_accepted_job_is_202_without_a_body_and_recorded(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    response = post(http, SUPPRESS, suppression("ada@example.com"))

    assert (response.status_code, response.content) == (202, b"")
    recorded = http.get("/_sandbox/requests").json()
    assert len(recorded) == 1
    assert recorded[0]["method"] == "POST"
    assert recorded[0]["path"] == SUPPRESS
    assert recorded[0]["body"] == suppression("ada@example.com")
    assert recorded[0]["received_at"].endswith("+00:00")
    assert "authorization" not in recorded[0]["headers"]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer pk_test_0123456789abcdef", "Klaviyo-API-Key", "Klaviyo-API-Key pk_other"],
)
def test_missing_or_invalid_authorization_is_401(
    sandbox: Sandbox, http: httpx.Client, authorization: str | None
) -> None:
    response = post(http, SUPPRESS, suppression("ada@example.com"), Authorization=authorization)

    assert response.status_code == 401
    assert only_error(response)["code"] == "not_authenticated"
    assert sandbox.requests() == []


@pytest.mark.parametrize("revision", [None, "", "latest", "2026/07/15"])
def test_missing_or_invalid_revision_is_400(
    sandbox: Sandbox, http: httpx.Client, revision: str | None
) -> None:
    response = post(http, SUPPRESS, suppression("ada@example.com"), revision=revision)

    assert response.status_code == 400
    error = only_error(response)
    assert (error["code"], error["source"]) == ("invalid", {"parameter": "revision"})


def test_a_pre_release_revision_is_accepted(http: httpx.Client) -> None:
    response = post(http, SUPPRESS, suppression("ada@example.com"), revision="2026-07-15.pre")

    assert response.status_code == 202


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_wrong_content_type_is_415(
    sandbox: Sandbox, http: httpx.Client, content_type: str | None
) -> None:
    response = post(
        http, SUPPRESS, suppression("ada@example.com"), **{"Content-Type": content_type}
    )

    assert response.status_code == 415
    assert only_error(response)["code"] == "unsupported_media_type"


def test_malformed_json_is_a_parse_error(http: httpx.Client) -> None:
    response = http.post(SUPPRESS, content=b'{"data": ', headers=headers())

    assert response.status_code == 400
    assert only_error(response)["code"] == "parse_error"


@pytest.mark.parametrize(
    ("path", "body", "pointer"),
    [
        (SUPPRESS, {"data": []}, "/data"),
        (SUPPRESS, {"data": {"type": "profile", "attributes": {}}}, "/data/type"),
        (
            SUPPRESS,
            suppression("ada@example.com", "not an email"),
            "/data/attributes/profiles/data/1/attributes/email",
        ),
        (
            SUPPRESS,
            suppression(*(f"u{i}@example.com" for i in range(101))),
            "/data/attributes/profiles/data",
        ),
        (EVENTS, one_event("e1", properties=None), "/data/attributes/properties"),
        (EVENTS, one_event("e1", time="yesterday"), "/data/attributes/time"),
        (EVENTS, one_event("e1", value="12"), "/data/attributes/value"),
        (
            EVENTS,
            one_event("e1", profile={"data": {"type": "profile", "attributes": {}}}),
            "/data/attributes/profile/data/attributes",
        ),
        (
            "/api/profile-subscription-bulk-create-jobs",
            {
                "data": {
                    "type": "profile-subscription-bulk-create-job",
                    "attributes": {
                        "profiles": {
                            "data": [
                                {
                                    "type": "profile",
                                    "attributes": {
                                        "email": "ada@example.com",
                                        "subscriptions": {
                                            "email": {
                                                "marketing": {
                                                    "consent": "SUBSCRIBED",
                                                    "consented_at": "2026-01-01T00:00:00+00:00",
                                                }
                                            }
                                        },
                                    },
                                }
                            ]
                        }
                    },
                }
            },
            "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consented_at",
        ),
        (
            "/api/data-privacy-deletion-jobs",
            {
                "data": {
                    "type": "data-privacy-deletion-job",
                    "attributes": {
                        "profile": {
                            "data": {
                                "type": "profile",
                                "attributes": {
                                    "email": "ada@example.com",
                                    "phone_number": "+15005550006",
                                },
                            }
                        }
                    },
                }
            },
            "/data/attributes/profile/data",
        ),
    ],
)
def test_a_bad_body_is_400_with_a_pointer(
    sandbox: Sandbox, http: httpx.Client, path: str, body: Any, pointer: str
) -> None:
    response = post(http, path, body)

    assert response.status_code == 400
    error = only_error(response)
    assert (error["code"], error["source"]) == ("invalid", {"pointer": pointer})
    assert sandbox.requests() == []
    assert [(r["path"], r["status"]) for r in sandbox.rejections()] == [(path, 400)]


def test_unknown_paths_and_methods(http: httpx.Client) -> None:
    missing = post(http, "/api/nothing-here", {})
    wrong_method = http.get(EVENTS, headers=headers())

    assert (missing.status_code, only_error(missing)["code"]) == (404, "not_found")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


def test_profile_import_is_201_then_200_with_a_stable_id(http: httpx.Client) -> None:
    def profile(email: str) -> dict[str, Any]:
        return {"data": {"type": "profile", "attributes": {"email": email, "first_name": "Ada"}}}

    created = post(http, "/api/profile-import", profile("ada@example.com"))
    updated = post(http, "/api/profile-import", profile("Ada@Example.com"))
    other = post(http, "/api/profile-import", profile("bob@example.com"))

    assert (created.status_code, updated.status_code, other.status_code) == (201, 200, 201)
    ids = [r.json()["data"]["id"] for r in (created, updated, other)]
    assert ids[0] == ids[1] != ids[2]
    assert len(ids[0]) == 26
    assert created.json()["data"]["type"] == "profile"


# --- recordings and the event index ------------------------------------------------------


def test_the_event_index_counts_submissions_and_a_reset_forgets(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    for unique_id in ("e1", "e2", "e1"):
        assert post(http, EVENTS, one_event(unique_id)).status_code == 202
    post(http, SUPPRESS, suppression("ada@example.com"))

    assert http.get("/_sandbox/events").json() == {"e1": 2, "e2": 1}
    assert http.get("/_sandbox/events/total").json() == {"unique_ids": 2}
    filtered = http.get("/_sandbox/requests", params={"path": EVENTS}).json()
    assert [r["body"]["data"]["attributes"]["unique_id"] for r in filtered] == ["e1", "e2", "e1"]
    assert [r["seq"] for r in filtered] == sorted(r["seq"] for r in filtered)

    assert http.delete("/_sandbox/requests").status_code == 204
    assert http.get("/_sandbox/requests").json() == []
    assert http.get("/_sandbox/events").json() == {}
    assert http.get("/_sandbox/events/total").json() == {"unique_ids": 0}


# --- faults ------------------------------------------------------------------------------


def test_faults_are_consumed_in_order_by_matching_requests(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    queued = http.post(
        "/_sandbox/faults",
        json=[
            {"path": "/api/profile-suppression", "status": 429, "retry_after": 3},
            {"path": EVENTS, "status": 503, "times": 2},
        ],
    )
    assert queued.status_code == 201
    assert len(http.get("/_sandbox/faults").json()) == 2

    event = post(http, EVENTS, one_event("e1"))
    throttled = post(http, SUPPRESS, suppression("ada@example.com"))
    passed = post(http, SUPPRESS, suppression("ada@example.com"))
    event_again = post(http, EVENTS, one_event("e1"))
    event_last = post(http, EVENTS, one_event("e1"))

    assert [r.status_code for r in (event, throttled, passed, event_again, event_last)] == [
        503,
        429,
        202,
        503,
        202,
    ]
    assert throttled.headers["retry-after"] == "3"
    error = only_error(throttled)
    assert (error["code"], error["title"]) == ("throttled", "Request was throttled.")
    assert "retry-after" not in event.headers
    assert http.get("/_sandbox/faults").json() == []
    assert http.get("/_sandbox/events").json() == {"e1": 1}
    rejections = http.get("/_sandbox/rejections").json()
    assert [(r["status"], r["code"]) for r in rejections] == [
        (503, "service_unavailable"),
        (429, "throttled"),
        (503, "service_unavailable"),
    ]


def test_a_fault_may_name_code_detail_and_pointer(http: httpx.Client) -> None:
    http.post(
        "/_sandbox/faults",
        json={"status": 409, "code": "duplicate_profile", "detail": "Taken.", "pointer": "/data"},
    )

    error = only_error(post(http, EVENTS, one_event("e1")))

    assert (error["status"], error["code"], error["detail"]) == (409, "duplicate_profile", "Taken.")
    assert error["source"] == {"pointer": "/data"}


def test_a_latency_only_fault_delays_but_accepts(sandbox: Sandbox, http: httpx.Client) -> None:
    http.post("/_sandbox/faults", json={"latency_ms": 1})

    assert post(http, EVENTS, one_event("e1")).status_code == 202
    assert sandbox.event_counts() == {"e1": 1}


def test_faults_can_be_cleared(http: httpx.Client) -> None:
    http.post("/_sandbox/faults", json={"status": 500, "times": 10})

    assert http.delete("/_sandbox/faults").status_code == 204
    assert post(http, EVENTS, one_event("e1")).status_code == 202


@pytest.mark.parametrize(
    "fault",
    [
        {},
        {"status": 200},
        {"status": "429"},
        {"status": 500, "times": 0},
        {"status": 500, "colour": "red"},
        [1],
    ],
)
def test_an_invalid_fault_is_refused(http: httpx.Client, fault: Any) -> None:
    response = http.post("/_sandbox/faults", json=fault)

    assert response.status_code == 400
    assert http.get("/_sandbox/faults").json() == []


def test_health_and_unknown_control_endpoints(http: httpx.Client) -> None:
    assert http.get("/_sandbox/health").json() == {"status": "ok"}
    assert http.get("/_sandbox/nothing").status_code == 404


# --- entry point -------------------------------------------------------------------------


def test_python_m_dispatcher_sandbox_serves_and_stops_on_sigterm() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"MARKETING_SANDBOX_ADDRESS": f"127.0.0.1:{port}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.sandbox"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        started = process.stderr.readline()  # blocks until the one start-up line
        assert f"listening on http://127.0.0.1:{port}" in started
        assert httpx.get(f"http://127.0.0.1:{port}/_sandbox/health").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- throttles ---------------------------------------------------------------------------


def test_a_throttle_admits_its_limit_per_window_then_answers_429_until_it_ends() -> None:
    now = [100.0]
    state = SandboxState(monotonic=lambda: now[0])
    state.add_throttle(Throttle(path="/api/event", limit=2, window_s=5))

    def retry_after(path: str) -> int | None:
        refusal = state.throttle_refusal(path)
        return None if refusal is None else refusal.retry_after

    assert [retry_after(EVENTS) for _ in range(2)] == [None, None]
    now[0] += 0.5
    assert retry_after("/api/event-bulk-create-jobs") == 5  # 4.5 s left, rounded up
    assert retry_after(SUPPRESS) is None, "other paths are not limited"
    now[0] += 4.4
    refusal = state.throttle_refusal(EVENTS)
    assert refusal is not None and refusal.retry_after == 1
    assert (refusal.window.name, refusal.window.limit, refusal.window.seconds) == (
        "throttle /api/event",
        2,
        5,
    )
    now[0] += 0.1
    assert retry_after(EVENTS) is None, "a new window"


def test_throttled_requests_are_429_with_retry_after_and_faults_lift_throttles(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    added = http.post("/_sandbox/throttles", json={"path": EVENTS, "limit": 1, "window_s": 60})
    assert added.status_code == 201
    assert http.get("/_sandbox/throttles").json() == [{"path": EVENTS, "limit": 1, "window_s": 60}]

    accepted = post(http, EVENTS, one_event("e1"))
    throttled = post(http, EVENTS, one_event("e2"))

    assert (accepted.status_code, throttled.status_code) == (202, 429)
    assert 59 <= int(throttled.headers["retry-after"]) <= 60
    assert only_error(throttled)["code"] == "throttled"
    assert sandbox.event_counts() == {"e1": 1}
    assert [r["status"] for r in sandbox.rejections()] == [429]
    assert http.delete("/_sandbox/faults").status_code == 204
    assert http.get("/_sandbox/throttles").json() == []
    assert post(http, EVENTS, one_event("e2")).status_code == 202


@pytest.mark.parametrize(
    "throttle", [{"limit": 0}, {"window_s": "5"}, {"limit": 1, "burst": 2}, [1], None]
)
def test_an_invalid_throttle_is_refused(http: httpx.Client, throttle: Any) -> None:
    response = http.post("/_sandbox/throttles", json=throttle)

    assert response.status_code == 400
    assert http.get("/_sandbox/throttles").json() == []
