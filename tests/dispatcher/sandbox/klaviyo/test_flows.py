"""Klaviyo's flows, simulated by the sandbox: a trigger metric's event starts a flow's
messages for the profile, sent when due by the sandbox's clock and recorded rendered; an exit
metric, a flow filter, an unsubscribe, a suppression or a deletion stops them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.sandbox.klaviyo.catalogue import flow_id
from tests.dispatcher.helpers import EpochClock, headers

START = 1_800_000_000.0
EMAIL = "ada@example.com"
WELCOME = {
    "name": "Welcome",
    "trigger_metric": "Started Welcome",
    "exit_metric": "Exited Welcome",
    "filter_property": "flow_welcome",
    "messages": [
        {"delay_s": 0, "subject": "Welcome, {{ person.first_name }}", "body": "Hello"},
        {
            "delay_s": 3600,
            "subject": "Still thinking about {{ event.lines.0.title }}?",
            "body": "Back at {{ event.product_url }}{{ event.missing }}",
        },
    ],
}
CART = {"lines": [{"title": "Green tea"}], "product_url": "https://shop.example/p/tea"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with start_sandbox(clock=EpochClock(START)) as running:
        yield running


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, headers=headers(), timeout=10) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def add_flow(http: httpx.Client, flow: dict[str, Any] = WELCOME) -> None:
    ok(http.post("/_sandbox/flows", json=flow), 201)


def event(metric: str, unique_id: str | None, properties: dict[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "properties": properties,
        "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
    }
    if unique_id is not None:
        attributes["unique_id"] = unique_id
    return attributes


def send_event(
    http: httpx.Client,
    metric: str = "Started Welcome",
    unique_id: str | None = "enrolment-1",
    properties: dict[str, Any] = CART,
    email: str = EMAIL,
) -> None:
    attributes = event(metric, unique_id, properties)
    attributes["profile"] = {"data": {"type": "profile", "attributes": {"email": email}}}
    ok(http.post("/api/events", json={"data": {"type": "event", "attributes": attributes}}), 202)


def send_bulk(http: httpx.Client, *events: dict[str, Any], email: str = EMAIL) -> None:
    entry = {
        "type": "event-bulk-create",
        "attributes": {
            "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
            "events": {"data": [{"type": "event", "attributes": e} for e in events]},
        },
    }
    job = {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": [entry]}}}
    ok(http.post("/api/event-bulk-create-jobs", json={"data": job}), 202)


def import_profile(http: httpx.Client, **attributes: Any) -> None:
    profile = {"type": "profile", "attributes": {"email": EMAIL, **attributes}}
    response = http.post("/api/profile-import", json={"data": profile})
    assert response.status_code in (200, 201), response.text


def profiles_job(http: httpx.Client, path: str, job_type: str, **attributes: Any) -> None:
    profile = {"type": "profile", "attributes": {"email": EMAIL, **attributes}}
    job = {"type": job_type, "attributes": {"profiles": {"data": [profile]}}}
    ok(http.post(path, json={"data": job}), 202)


def messages(http: httpx.Client, **query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok(http.get("/_sandbox/messages", params=query))
    return found


def advance(http: httpx.Client, seconds: float) -> dict[str, Any]:
    clock: dict[str, Any] = ok(http.post("/_sandbox/clock", json={"advance_s": seconds}))
    return clock


def statuses(http: httpx.Client) -> list[tuple[str, str | None]]:
    return [(m["status"], m["reason"]) for m in messages(http, email=EMAIL)]


def test_a_trigger_sends_its_first_message_at_once_rendered_with_event_and_person(
    http: httpx.Client,
) -> None:
    add_flow(http)
    import_profile(http, first_name="Ada", properties={"flow_welcome": "active"})

    send_event(http)

    first, second = messages(http, email="ADA@example.com", flow="Welcome")
    assert first["status"] == "sent" and first["reason"] is None
    assert (first["subject"], first["body"], first["to"]) == ("Welcome, Ada", "Hello", EMAIL)
    assert (first["channel"], first["unique_id"], first["step"]) == ("email", "enrolment-1", 0)
    assert first["decided_at"] == first["due_at"] == first["scheduled_at"]
    assert second["status"] == "scheduled" and second["subject"] is None
    assert messages(http, email="bob@example.com") == messages(http, flow="Other") == []


def test_a_delayed_message_goes_out_only_when_the_clock_reaches_it(http: httpx.Client) -> None:
    add_flow(http)
    send_event(http)

    assert advance(http, 3599)["offset_s"] == 3599
    assert [m["status"] for m in messages(http)] == ["sent", "scheduled"]
    clock = advance(http, 1)

    second = messages(http)[1]
    assert second["status"] == "sent" and second["decided_at"] == second["due_at"]
    assert second["subject"] == "Still thinking about Green tea?"
    assert second["body"] == "Back at https://shop.example/p/tea"
    assert (clock["now_s"], clock["now"]) == (START + 3600, "2027-01-15T09:00:00.000000+00:00")
    assert ok(http.get("/_sandbox/clock")) == clock


def test_the_exit_metric_cancels_the_pending_messages_at_once(http: httpx.Client) -> None:
    add_flow(http)
    send_event(http)

    send_event(http, metric="Exited Welcome", unique_id="enrolment-1", properties={})
    assert statuses(http) == [("sent", None), ("cancelled", "exit event 'Exited Welcome'")]
    advance(http, 7200)

    assert messages(http, status="sent")[0]["step"] == 0
    assert len(messages(http, status="cancelled")) == 1


def test_a_filter_property_no_longer_active_cancels_the_rest_of_the_run(
    http: httpx.Client,
) -> None:
    flow = WELCOME | {
        "messages": [{"delay_s": 60, "subject": "a"}, {"delay_s": 90, "subject": "b"}]
    }
    add_flow(http, flow)
    import_profile(http, properties={"flow_welcome": "active"})
    send_event(http)

    import_profile(http, properties={"flow_welcome": "exited"})
    assert [m["status"] for m in messages(http)] == ["scheduled", "scheduled"]
    advance(http, 60)

    why = "profile property flow_welcome is 'exited', not 'active' (flow filter)"
    assert statuses(http) == [("cancelled", why), ("cancelled", why)]


Job = tuple[str, str, dict[str, Any], str]  # path, job type, profile attributes, reason
UNSUBSCRIBE: Job = (
    "/api/profile-subscription-bulk-delete-jobs",
    "profile-subscription-bulk-delete-job",
    {"subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}},
    "unsubscribed from email marketing",
)
SUPPRESS: Job = (
    "/api/profile-suppression-bulk-create-jobs",
    "profile-suppression-bulk-create-job",
    {},
    "suppressed (USER_SUPPRESSED)",
)


@pytest.mark.parametrize(("path", "job_type", "attributes", "reason"), [UNSUBSCRIBE, SUPPRESS])
def test_no_email_goes_to_a_profile_unsubscribed_or_suppressed_when_it_is_due(
    http: httpx.Client, path: str, job_type: str, attributes: dict[str, Any], reason: str
) -> None:
    add_flow(http)
    send_event(http)

    profiles_job(http, path, job_type, **attributes)
    advance(http, 3600)

    assert statuses(http) == [("sent", None), ("skipped", reason)]
    skipped = messages(http, status="skipped")[0]
    assert skipped["subject"] == "Still thinking about Green tea?"  # what it would have said


def test_a_planted_suppression_skips_and_a_deleted_profile_is_cancelled(
    http: httpx.Client,
) -> None:
    add_flow(http)
    ok(http.post("/_sandbox/profiles", json={"email": EMAIL, "suppression": ["HARD_BOUNCE"]}))
    send_event(http)
    send_event(http, email="bob@example.com")
    profile = {"data": {"type": "profile", "attributes": {"email": "bob@example.com"}}}
    erasure = {"type": "data-privacy-deletion-job", "attributes": {"profile": profile}}

    ok(http.post("/api/data-privacy-deletion-jobs", json={"data": erasure}), 202)

    assert statuses(http)[0] == ("skipped", "suppressed (HARD_BOUNCE)")
    bob = [(m["status"], m["reason"]) for m in messages(http, email="bob@example.com")]
    assert bob == [("sent", None), ("cancelled", "profile deleted")]


def test_a_repeated_unique_id_starts_one_run_whichever_endpoint_repeats_it(
    http: httpx.Client,
) -> None:
    add_flow(http)

    send_event(http)
    send_event(http)
    send_bulk(http, event("Started Welcome", "enrolment-1", CART))
    send_bulk(http, event("Started Welcome", "enrolment-2", CART), event("Viewed", "v-1", {}))

    runs = {(m["run"], m["unique_id"]) for m in messages(http)}
    assert sorted(unique_id for _, unique_id in runs) == ["enrolment-1", "enrolment-2"]
    assert len(messages(http, status="sent")) == 2


def test_clearing_the_log_forgets_flows_runs_and_messages(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    add_flow(http)
    send_event(http)

    assert ok(http.delete("/_sandbox/requests"), 204) is None
    send_event(http, unique_id="enrolment-2")
    advance(http, 3600)

    assert ok(http.get("/_sandbox/flows")) == []
    assert messages(http) == sandbox.messages() == []


def test_flows_are_listed_as_configured_and_replaced_by_name(http: httpx.Client) -> None:
    add_flow(http)
    replaced = WELCOME | {"exit_metric": None, "messages": [{"subject": "Hi"}]}

    answered = ok(http.post("/_sandbox/flows", json=[replaced]), 201)
    send_event(http)

    step = {"delay_s": 0.0, "channel": "email", "subject": "Hi", "body": ""}
    shown = {"id": flow_id("Welcome")} | replaced | {"messages": [step]}
    assert answered == ok(http.get("/_sandbox/flows")) == [shown]
    assert [m["subject"] for m in messages(http)] == ["Hi"]


def test_an_sms_needs_sms_consent_and_a_phone_number(http: httpx.Client, sandbox: Sandbox) -> None:
    sms = {"channel": "sms", "subject": "", "body": "Tea is back"}
    add_flow(http, WELCOME | {"messages": [sms]})
    sandbox.plant_profile(email=EMAIL, phone_number="+447700900123", consent={"sms": "SUBSCRIBED"})

    send_event(http)
    send_event(http, email="bob@example.com")

    ada, bob = messages(http, email=EMAIL)[0], messages(http, email="bob@example.com")[0]
    assert (ada["status"], ada["to"], ada["body"]) == ("sent", "+447700900123", "Tea is back")
    assert (bob["status"], bob["reason"]) == ("skipped", "the profile has no phone number")
