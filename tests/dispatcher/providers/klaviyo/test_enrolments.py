"""KlaviyoClient.plan_enrolments against the sandbox: many people's changes in one bulk event
job (a plan's only event alone, POST /api/events), each event with its flow's profile property
in the profile's attributes (no profile-import), unique_id the enrolment id (or it with
":exit"); a change with only a property to set sets it by a profile-import of its own; an end
while another enrolment of the person runs on sends its exit event and leaves the property.
Calls stay within a job's events and bytes, and each draws from its endpoint's budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from dispatcher.providers.base import CREATE_EVENTS, UPSERT_PROFILE, EnrolmentChange
from dispatcher.providers.errors import PermanentProviderError
from dispatcher.providers.klaviyo import bodies, enrolments
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.providers.klaviyo.enrolments import (
    ENROLMENT_EVENT,
    ENROLMENT_EVENTS,
    ENROLMENT_PROPERTY,
)
from dispatcher.providers.klaviyo.limits import LIMITS
from dispatcher.sandbox import Sandbox
from tests.dispatcher.helpers import run_enrolments, with_client

EVENTS = "/api/events"
EVENTS_BULK = "/api/event-bulk-create-jobs"
PROFILE_IMPORT = "/api/profile-import"
PROPERTY = "flow_abandoned_cart"
WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
ENROLMENT = "0b6e3c1a-5d4f-4a8e-9c2b-7f1e2d3c4b5a"
BEGUN = EnrolmentChange(
    flow_id="abandoned-cart",
    enrolment_id=ENROLMENT,
    email="ada@example.com",
    active=True,
    time=WHEN,
    start_metric="Abandoned Cart Flow Started",
    exit_metric="Abandoned Cart Flow Exited",
    profile_property=PROPERTY,
    # A context key of ours' name is overridden by ours.
    context={"cart_id": "c-42", "lines": [{"sku": "mug-42", "quantity": 2}], "flow_id": "x"},
    entry_key="c-42",
)
ENDED = replace(BEGUN, active=False, exit_reason="event:placed_order", context={})


def begun(n: int, **fields: Any) -> EnrolmentChange:
    """Person n's enrolment, begun."""
    values: dict[str, Any] = {"enrolment_id": f"e-{n:05d}", "email": f"p{n}@example.com"}
    return replace(BEGUN, **(values | fields))


def plan(changes: Sequence[EnrolmentChange], sandbox: Sandbox) -> tuple[list[str], dict[int, str]]:
    """Each change's plan run whole: the calls' operations and the owners accepted."""

    async def run(client: KlaviyoClient) -> tuple[list[str], dict[int, str]]:
        calls, accepted = await run_enrolments(client, changes)
        return [call.operation for call in calls], accepted

    return with_client(sandbox, run)


def sent(sandbox: Sandbox) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sandbox.requests()]


def single_event(sandbox: Sandbox, index: int = 0) -> dict[str, Any]:
    attributes: dict[str, Any] = sandbox.requests(EVENTS)[index]["body"]["data"]["attributes"]
    return attributes


def entries(request: dict[str, Any]) -> list[dict[str, Any]]:
    """A bulk job's profile entries: {"profile": attributes, "events": [attributes]}."""
    data = request["body"]["data"]["attributes"]["events-bulk-create"]["data"]
    return [
        {
            "profile": entry["attributes"]["profile"]["data"]["attributes"],
            "events": [e["attributes"] for e in entry["attributes"]["events"]["data"]],
        }
        for entry in data
    ]


def test_a_beginning_alone_is_one_event_carrying_the_property(sandbox: Sandbox) -> None:
    operations, accepted = plan([BEGUN], sandbox)

    assert operations == [ENROLMENT_EVENT]
    assert accepted == {0: ""}, "Klaviyo keeps no enrolment of its own"
    assert sent(sandbox) == [f"POST {EVENTS}"], "no profile-import"
    attributes = single_event(sandbox)
    assert attributes["profile"]["data"]["attributes"] == {
        "email": "ada@example.com",
        "properties": {PROPERTY: "active"},
    }
    assert attributes["metric"]["data"]["attributes"]["name"] == "Abandoned Cart Flow Started"
    assert attributes["unique_id"] == ENROLMENT
    assert attributes["properties"] == {
        "cart_id": "c-42",
        "lines": [{"sku": "mug-42", "quantity": 2}],
        "flow_id": "abandoned-cart",
        "entry_key": "c-42",
    }
    assert attributes["time"].startswith("2026-11-02T09:30:00")
    assert sandbox.event_counts() == {ENROLMENT: 1}


def test_many_peoples_beginnings_are_one_bulk_job_each_profile_with_its_property(
    sandbox: Sandbox,
) -> None:
    changes = [begun(n) for n in range(250)]

    operations, accepted = plan(changes, sandbox)

    assert operations == [ENROLMENT_EVENTS]
    assert accepted == dict.fromkeys(range(250), "")
    assert sent(sandbox) == [f"POST {EVENTS_BULK}"]
    (request,) = sandbox.requests(EVENTS_BULK)
    assert [entry["profile"] for entry in entries(request)] == [
        {"email": c.email, "properties": {PROPERTY: "active"}} for c in changes
    ]
    assert sandbox.event_counts() == {c.enrolment_id: 1 for c in changes}


def test_an_end_sends_the_exit_event_and_sets_the_property_exited(sandbox: Sandbox) -> None:
    plan([ENDED], sandbox)

    attributes = single_event(sandbox)
    assert attributes["profile"]["data"]["attributes"]["properties"] == {PROPERTY: "exited"}
    assert attributes["metric"]["data"]["attributes"]["name"] == "Abandoned Cart Flow Exited"
    assert attributes["unique_id"] == f"{ENROLMENT}:exit"
    assert attributes["properties"] == {
        "flow_id": "abandoned-cart",
        "entry_key": "c-42",
        "exit_reason": "event:placed_order",
    }


def test_an_end_while_another_enrolment_runs_on_leaves_the_property(sandbox: Sandbox) -> None:
    """Another cart of the person is still being recovered: its flow must go on."""
    operations, accepted = plan([replace(ENDED, others_active=True)], sandbox)

    assert (operations, accepted) == ([ENROLMENT_EVENT], {0: ""})
    attributes = single_event(sandbox)
    assert attributes["unique_id"] == f"{ENROLMENT}:exit"
    assert attributes["profile"]["data"]["attributes"] == {"email": "ada@example.com"}


@pytest.mark.parametrize("change", [BEGUN, ENDED], ids=["begun", "ended"])
def test_without_a_metric_the_property_is_set_by_a_profile_import(
    sandbox: Sandbox, change: EnrolmentChange
) -> None:
    quiet = replace(change, start_metric="", exit_metric="")

    operations, accepted = plan([quiet], sandbox)

    assert (operations, accepted) == ([ENROLMENT_PROPERTY], {0: ""})
    assert sent(sandbox) == [f"POST {PROFILE_IMPORT}"]
    profile = sandbox.state.profiles.find("email", "ada@example.com")
    assert profile is not None
    assert profile["properties"] == {PROPERTY: "active" if change.active else "exited"}


def test_an_end_with_neither_a_metric_nor_a_property_to_set_sends_nothing(
    sandbox: Sandbox,
) -> None:
    quiet = replace(ENDED, exit_metric="", others_active=True)

    assert plan([quiet, replace(BEGUN, start_metric="", profile_property="")], sandbox) == (
        [],
        {},
    )
    assert sent(sandbox) == []


def test_without_a_property_only_the_event_is_sent(sandbox: Sandbox) -> None:
    plan([replace(BEGUN, profile_property="")], sandbox)

    assert sent(sandbox) == [f"POST {EVENTS}"]
    assert single_event(sandbox)["profile"]["data"]["attributes"] == {"email": "ada@example.com"}


def test_of_one_persons_changes_to_a_property_only_the_newest_sends_it(
    sandbox: Sandbox,
) -> None:
    """Two carts: the first's end, then the second's beginning (in one job, one profile
    entry); and a property-only end overtaken by a later beginning is not sent at all."""
    first_ended = replace(ENDED, enrolment_id="first")
    second_begun = replace(BEGUN, enrolment_id="second")
    quiet_end = begun(1, active=False, exit_metric="", enrolment_id="quiet")
    again = begun(1, enrolment_id="again")

    operations, accepted = plan([first_ended, quiet_end, second_begun, again], sandbox)

    assert operations == [ENROLMENT_EVENTS]
    assert accepted == {0: "", 2: "", 3: ""}, "the overtaken property-only end sends nothing"
    (request,) = sandbox.requests(EVENTS_BULK)
    ada, other = entries(request)
    assert ada["profile"]["properties"] == {PROPERTY: "active"}
    assert [e["unique_id"] for e in ada["events"]] == ["first:exit", "second"]
    assert other["profile"] == {"email": "p1@example.com", "properties": {PROPERTY: "active"}}


def test_a_job_holds_at_most_1000_events_and_5_mb() -> None:
    small = [begun(n) for n in range(1001)]
    large = [begun(n, context={"blob": "x" * 20_000}) for n in range(300)]
    limits = LIMITS.enrolments[ENROLMENT_EVENTS]

    by_items = enrolments.plan(list(enumerate(small)), limits).jobs
    by_bytes = enrolments.plan(list(enumerate(large)), limits).jobs

    assert [len(job) for job in by_items] == [1000, 1]
    assert len(by_bytes) == 2
    for job in by_bytes:
        content, _ = bodies.events_bulk(
            [item.prepared for _, item in job], [item.properties for _, item in job]
        )
        assert len(content) <= limits.wrapping_bytes + sum(i.prepared.size for _, i in job)
        assert len(content) <= 5 * 1024 * 1024
    assert [owner for job in by_bytes for owner, _ in job] == list(range(300)), "in order"


def test_an_event_refused_in_a_job_is_named_by_its_owner(sandbox: Sandbox) -> None:
    """The pointer into the job (past the profile's properties) names the refused change, so
    the caller fails it alone and sends the others again."""
    changes = [begun(0), begun(1, start_metric="m" * 200), begun(2)]

    async def run(client: KlaviyoClient) -> PermanentProviderError:
        (call,) = client.plan_enrolments(list(enumerate(changes)), lambda owner, id_: None)
        with pytest.raises(PermanentProviderError) as refused:
            await call.send(call.owners)
        return refused.value

    refused = with_client(sandbox, run)

    assert refused.item_indexes == (1,)


def test_a_job_sent_again_carries_the_same_unique_ids(sandbox: Sandbox) -> None:
    """Its answer lost, say: the property is set to what it was, and Klaviyo records one event
    per unique_id (the sandbox counts both submissions of it)."""
    changes = [begun(0), begun(1)]

    async def twice(client: KlaviyoClient) -> None:
        (call,) = client.plan_enrolments(list(enumerate(changes)), lambda owner, id_: None)
        await call.send(call.owners)
        await call.send(call.owners)

    with_client(sandbox, twice)

    assert sandbox.event_counts() == {"e-00000": 2, "e-00001": 2}
    first, second = sandbox.requests(EVENTS_BULK)
    assert first["body"] == second["body"]


def test_each_call_draws_from_its_endpoints_budget_in_one_request() -> None:
    """The bulk jobs share the events worker's budget, a property-only change the profile
    upserts'; each call is one request, reserved as a whole by the gate."""
    assert set(LIMITS.enrolments) == {ENROLMENT_EVENTS, ENROLMENT_EVENT, ENROLMENT_PROPERTY}
    assert LIMITS.rates[ENROLMENT_EVENTS] == LIMITS.rates[CREATE_EVENTS]
    assert LIMITS.rates[ENROLMENT_PROPERTY] == LIMITS.rates[UPSERT_PROFILE]
    assert [bucket.name for bucket in LIMITS.rates[ENROLMENT_EVENT]] == ["events"]
    assert not set(LIMITS.enrolments) & LIMITS.paces_requests


def test_the_property_sent_with_an_event_is_on_the_profile(sandbox: Sandbox) -> None:
    plan([begun(0), begun(1)], sandbox)
    plan([replace(ENDED, email="p0@example.com", enrolment_id="e-00000")], sandbox)

    properties = [
        (sandbox.state.profiles.find("email", f"p{n}@example.com") or {}).get("properties")
        for n in range(2)
    ]
    assert properties == [{PROPERTY: "exited"}, {PROPERTY: "active"}]
