"""The provider clients' request hook (`http_pool.note_leaving`) and `sent_in_time`, on a
real server: a request stamped by the gate notes its stamp's age when its first bytes
go, not when httpx runs its hooks; one whose stamp went stale by then is called off
before any byte goes and sent again on a renewed stamp."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from dispatcher.providers import http_pool
from dispatcher.providers.base import RequestStamp, current_stamp, stamped
from dispatcher.providers.errors import RetryableProviderError
from dispatcher.sandbox import Sandbox
from tests.dispatcher.helpers import API_KEY, ScriptedStamp, stamp_ages_noted

OPERATION = "test-http-pool"
REVISION = "2026-07-15"  # the Klaviyo client's


def test_the_age_is_read_as_the_request_goes(sandbox: Sandbox) -> None:
    """A hook after ours ages the stamp by 40 ms: the age noted is that of then."""
    age = [0.0]

    async def later_hook(request: httpx.Request) -> None:
        age[0] = 0.04

    async def main() -> None:
        hooks = {"request": [http_pool.note_leaving, later_hook]}
        async with httpx.AsyncClient(base_url=sandbox.base_url, event_hooks=hooks) as client:
            with stamped(RequestStamp(OPERATION, lambda: age[0], _always, _never, _went)):
                await client.get("/_sandbox/requests")

    before = stamp_ages_noted(OPERATION)
    asyncio.run(main())
    count, total = stamp_ages_noted(OPERATION)
    assert count - before[0] == 1
    assert abs(total - before[1] - 0.04) < 1e-9


def test_a_trace_the_caller_set_still_gets_every_event(sandbox: Sandbox) -> None:
    events: list[str] = []

    async def own_trace(event: str, info: dict[str, object]) -> None:
        events.append(event)

    async def main() -> None:
        hooks = {"request": [http_pool.note_leaving]}
        async with httpx.AsyncClient(base_url=sandbox.base_url, event_hooks=hooks) as client:
            with stamped(ScriptedStamp(OPERATION).stamp()):
                await client.get("/_sandbox/requests", extensions={"trace": own_trace})

    before = stamp_ages_noted(OPERATION)
    asyncio.run(main())
    assert "http11.send_request_headers.started" in events
    assert "http11.receive_response_headers.complete" in events
    assert stamp_ages_noted(OPERATION)[0] == before[0] + 1


class _AgesBetweenHooks:
    """A stamp that goes stale while httpx runs its request hooks (`later_hook`, after
    `note_leaving`), as on a busy event loop, until it is renewed."""

    def __init__(self) -> None:
        self.renewals = 0
        self.stale = False
        self.stamp = RequestStamp(OPERATION, lambda: 0.0, self._fresh, self._renew, _went)

    async def later_hook(self, request: httpx.Request) -> None:
        if current_stamp() is self.stamp:
            self.stale = self.renewals == 0

    def _fresh(self) -> bool:
        return not self.stale

    async def _renew(self) -> None:
        self.renewals += 1
        self.stale = False


def _late(outcome: str) -> float:
    labels = {"operation": OPERATION, "outcome": outcome}
    name = "marketing_dispatcher_budget_late_requests_total"
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _lists_seen(sandbox: Sandbox) -> int:
    return len([r for r in sandbox.requests() if r["path"] == "/api/lists"])


def test_a_request_leaving_on_a_stale_stamp_is_called_off_and_sent_once_renewed(
    sandbox: Sandbox,
) -> None:
    """On a connection kept from an earlier request, the stamp goes stale after the
    hooks: no byte of the request reaches the server then; `sent_in_time` renews the
    stamp and the request goes once."""
    aging = _AgesBetweenHooks()

    async def main() -> int:
        hooks = {"request": [http_pool.note_leaving, aging.later_hook]}
        async with _api_client(sandbox, hooks) as client:
            await client.get("/api/lists")  # unstamped: it opens the connection
            with stamped(aging.stamp):
                response = await http_pool.sent_in_time(lambda: client.get("/api/lists"))
        return response.status_code

    ages_before, called_off = stamp_ages_noted(OPERATION)[0], _late("called_off")
    assert asyncio.run(main()) == 200
    assert aging.renewals == 1
    assert _late("called_off") == called_off + 1
    assert stamp_ages_noted(OPERATION)[0] == ages_before + 1  # only the request that went
    assert _lists_seen(sandbox) == 2, "the stamped request reached it once"


def test_a_request_that_opened_its_own_connection_goes_however_late(sandbox: Sandbox) -> None:
    """Its connection's setup aged the stamp: called off, the connection would close and
    the request sent again would open another. It goes, counted as let go."""
    aging = _AgesBetweenHooks()

    async def main() -> int:
        hooks = {"request": [http_pool.note_leaving, aging.later_hook]}
        async with _api_client(sandbox, hooks) as client:
            with stamped(aging.stamp):
                response = await http_pool.sent_in_time(lambda: client.get("/api/lists"))
        return response.status_code

    let_go, called_off = _late("let_go"), _late("called_off")
    assert asyncio.run(main()) == 200
    assert aging.renewals == 0
    assert (_late("let_go"), _late("called_off")) == (let_go + 1, called_off)
    assert _lists_seen(sandbox) == 1


def test_a_request_late_on_every_try_fails_as_retryable() -> None:
    """Each try is renewed first; after `LATE_SENDS` tries called off, the request
    fails as retryable (none of its bytes went)."""
    tries: list[int] = []
    renewals: list[int] = []

    async def renew() -> None:
        renewals.append(1)

    async def send() -> None:
        tries.append(1)
        raise http_pool.LeftLate(OPERATION)

    async def main() -> None:
        with stamped(RequestStamp(OPERATION, lambda: 1.0, lambda: False, renew, _went)):
            await http_pool.sent_in_time(send)

    with pytest.raises(RetryableProviderError, match="none of it was sent"):
        asyncio.run(main())
    assert len(tries) == len(renewals) == http_pool.LATE_SENDS


def _api_client(sandbox: Sandbox, hooks: dict[str, list[Any]]) -> httpx.AsyncClient:
    """A client of the sandbox's API, whose requests it records."""
    headers = {"Authorization": f"Klaviyo-API-Key {API_KEY}", "revision": REVISION}
    return httpx.AsyncClient(base_url=sandbox.base_url, headers=headers, event_hooks=hooks)


def _always() -> bool:
    return True


async def _never() -> None:
    raise AssertionError("a fresh stamp is not renewed")


def _went() -> None:
    pass
