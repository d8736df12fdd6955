"""An ActiveCampaign sandbox per test (rate limits off unless a test is about them) and a
client on it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.sandbox.activecampaign import (
    ActiveCampaignSandbox,
    start_activecampaign_sandbox,
)

T = TypeVar("T")
API_KEY = "ac-test-key"
ACTID = "998877"
EVENT_KEY = "event-key"


@pytest.fixture
def ac() -> Iterator[ActiveCampaignSandbox]:
    with start_activecampaign_sandbox(
        api_key=API_KEY,
        tracking_actid=ACTID,
        tracking_key=EVENT_KEY,
        rate_limits=False,
        import_delay_s=0.0,
    ) as running:
        yield running


@pytest.fixture
def limited() -> Iterator[ActiveCampaignSandbox]:
    """The sandbox at ActiveCampaign's real limit, 5 requests/s per account, on a clock that
    stands still 0.25 s into a second: every request falls in one window."""
    with start_activecampaign_sandbox(
        api_key=API_KEY,
        tracking_actid=ACTID,
        tracking_key=EVENT_KEY,
        import_delay_s=0.0,
        clock=lambda: 1_800_000_000.25,
    ) as running:
        yield running


def client_on(sandbox: ActiveCampaignSandbox, **options: Any) -> ActiveCampaignClient:
    tracking = TrackingAccount(ACTID, options.pop("event_key", EVENT_KEY), sandbox.tracking_url)
    key = options.pop("api_key", API_KEY)
    return ActiveCampaignClient(sandbox.base_url, key, tracking, **options)


def with_client(
    sandbox: ActiveCampaignSandbox,
    operation: Callable[[ActiveCampaignClient], Awaitable[T]],
    **options: Any,
) -> T:
    """Run one async operation with a fresh client (nothing remembered) on the sandbox."""

    async def run() -> T:
        async with client_on(sandbox, **options) as client:
            return await operation(client)

    return asyncio.run(run())


def paths(sandbox: ActiveCampaignSandbox) -> list[str]:
    """Method and path of every accepted request, in order."""
    return [f"{r['method']} {r['path']}" for r in sandbox.requests()]


def api(sandbox: ActiveCampaignSandbox, method: str, path: str, body: Any = None) -> Any:
    """A raw call on the sandbox's API, as another program on the account would make it."""
    with httpx.Client(base_url=sandbox.base_url + "/api/3", timeout=10) as http:
        response = http.request(method, path, json=body, headers={"Api-Token": API_KEY})
        response.raise_for_status()
        return response.json()
