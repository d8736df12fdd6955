"""Both sandboxes answer the simulated sending's control endpoints in one shape: the clock
(which everything the sandbox times follows), the flows, and the messages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from dispatcher.sandbox import start_sandbox
from dispatcher.sandbox.activecampaign import start_activecampaign_sandbox
from dispatcher.sandbox.common.running import RunningServer
from tests.dispatcher.helpers import EpochClock, headers

START = 1_800_000_000.0
MESSAGE = {"delay_s": 60, "subject": "Hello"}


@dataclass(frozen=True)
class Provider:
    http: httpx.Client
    flow: dict[str, Any]  # a valid flow in the sandbox's own shape
    call: tuple[str, str, dict[str, str]]  # an API call that is recorded: method, path, headers

    def error(self, response: httpx.Response) -> str:
        """The detail of the provider's error body."""
        body = response.json()
        detail: str = body["errors"][0]["detail"] if "errors" in body else body["message"]
        return detail


@pytest.fixture(params=["klaviyo", "activecampaign"])
def provider(request: pytest.FixtureRequest) -> Iterator[Provider]:
    running: RunningServer
    if request.param == "klaviyo":
        running = start_sandbox(clock=EpochClock(START))
        flow = {"name": "Welcome", "trigger_metric": "Started Welcome", "messages": [MESSAGE]}
        call = ("GET", "/api/lists", headers())
    else:
        running = start_activecampaign_sandbox(clock=EpochClock(START))
        flow = {"automation": "1", "messages": [MESSAGE]}
        call = ("GET", "/api/3/automations", {"Api-Token": "any"})
    with running, httpx.Client(base_url=running.base_url, timeout=10) as http:
        yield Provider(http, flow, call)


def test_the_clock_moves_on_and_what_the_sandbox_records_follows(provider: Provider) -> None:
    http = provider.http
    assert http.get("/_sandbox/clock").json() == {
        "now": "2027-01-15T08:00:00.000000+00:00",
        "now_s": START,
        "offset_s": 0.0,
    }

    moved = http.post("/_sandbox/clock", json={"advance_s": 90.5})
    method, path, call_headers = provider.call
    assert http.request(method, path, headers=call_headers).status_code == 200

    assert moved.status_code == 200
    assert moved.json() == http.get("/_sandbox/clock").json()
    assert moved.json()["now_s"] == START + 90.5 and moved.json()["offset_s"] == 90.5
    (recorded,) = http.get("/_sandbox/requests").json()
    assert recorded["received_s"] == START + 90.5


@pytest.mark.parametrize("body", [{"advance_s": -1}, {"advance_s": True}, {"advance_s": "1"}, {}])
def test_the_clock_never_goes_back_and_takes_only_seconds(
    provider: Provider, body: dict[str, Any]
) -> None:
    refused = provider.http.post("/_sandbox/clock", json=body)

    assert refused.status_code == 400 and "advance_s" in provider.error(refused)
    assert provider.http.get("/_sandbox/clock").json()["offset_s"] == 0.0


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ({"delay_s": -1, "subject": "x"}, "delay_s"),
        ({"channel": "push", "subject": "x"}, "channel"),
        ({"subject": "x", "template": "y"}, "template"),
        ({"subject": 3}, "subject"),
    ],
)
def test_a_bad_flow_is_refused_and_nothing_is_added(
    provider: Provider, message: dict[str, Any], named: str
) -> None:
    bad = provider.flow | {"messages": [message]}

    refused = provider.http.post("/_sandbox/flows", json=[provider.flow, bad])

    assert refused.status_code == 400 and named in provider.error(refused)
    assert provider.http.get("/_sandbox/flows").json() == []


def test_flows_are_listed_and_forgotten(provider: Provider) -> None:
    http = provider.http
    added = http.post("/_sandbox/flows", json=provider.flow)

    assert added.status_code == 201 and http.get("/_sandbox/flows").json() == added.json()
    assert added.json()[0]["messages"] == [
        MESSAGE | {"delay_s": 60.0, "channel": "email"} | {"body": ""}
    ]
    assert http.delete("/_sandbox/flows").status_code == 204
    assert http.get("/_sandbox/flows").json() == http.get("/_sandbox/messages").json() == []


def test_messages_are_filtered_by_a_known_status_only(provider: Provider) -> None:
    refused = provider.http.get("/_sandbox/messages", params={"status": "delivered"})

    assert refused.status_code == 400 and "status" in provider.error(refused)
    assert provider.http.get("/_sandbox/messages", params={"status": "sent"}).json() == []
