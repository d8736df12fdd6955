"""A real ActiveCampaign sandbox per test on a virtual epoch clock, and clients for it.

`api` moves the clock a quarter second before each call, so a test's calls stay under the
account's 5 requests/s without waiting; `raw` leaves the clock alone (for the limits)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox, start_activecampaign_sandbox
from tests.dispatcher.helpers import EpochClock

API_KEY = "ac-test-key"
ACTID = "223344"
TRACKING_KEY = "tracking-test-key"
START = 1_800_000_000.0  # an epoch second: windows start here
IMPORT_DELAY_S = 4.0


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def ac(clock: EpochClock) -> Iterator[ActiveCampaignSandbox]:
    with start_activecampaign_sandbox(
        api_key=API_KEY,
        tracking_actid=ACTID,
        tracking_key=TRACKING_KEY,
        import_delay_s=IMPORT_DELAY_S,
        clock=clock,
    ) as running:
        yield running


@pytest.fixture
def api(ac: ActiveCampaignSandbox, clock: EpochClock) -> Iterator[httpx.Client]:
    def tick(request: httpx.Request) -> None:
        clock.advance(0.25)

    with httpx.Client(
        base_url=f"{ac.base_url}/api/3",
        headers={"Api-Token": API_KEY},
        event_hooks={"request": [tick]},
        timeout=10,
    ) as client:
        yield client


@pytest.fixture
def raw(ac: ActiveCampaignSandbox) -> Iterator[httpx.Client]:
    """No token, no clock ticks: for auth, limits and the control endpoints."""
    with httpx.Client(base_url=ac.base_url, timeout=10) as client:
        yield client


def answer(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def sync_contact(api: httpx.Client, email: str, **fields: Any) -> dict[str, Any]:
    body = answer(api.post("/contact/sync", json={"contact": {"email": email, **fields}}), 201)
    contact: dict[str, Any] = body["contact"]
    return contact


def create_list(api: httpx.Client, name: str = "Newsletter") -> str:
    given = {"name": name, "stringid": name.lower(), "sender_url": "https://shop.example"}
    given["sender_reminder"] = "You signed up at our shop."
    list_id: str = answer(api.post("/lists", json={"list": given}), 200)["list"]["id"]
    return list_id


def create_field(api: httpx.Client, title: str, field_type: str = "text") -> str:
    created = answer(api.post("/fields", json={"field": {"title": title, "type": field_type}}), 201)
    field_id: str = created["field"]["id"]
    return field_id


def list_status_body(contact: str, list_id: str, status: int) -> dict[str, Any]:
    return {"contactList": {"contact": contact, "list": list_id, "status": status}}
