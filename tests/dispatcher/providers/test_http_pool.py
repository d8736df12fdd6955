"""The provider clients' request hook (`http_pool.note_leaving`) and `sent_in_time`, on a
real server: a request stamped by the gate notes its stamp's age when its first bytes
go, not when httpx runs its hooks; one whose stamp went stale by then is called off
before any byte goes and sent again on a renewed stamp."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from dispatcher.providers import http_pool
from dispatcher.providers.base import RequestStamp, stamped
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
            with stamped(RequestStamp(OPERATION, lambda: age[0], _always, _never)):
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


def test_a_request_leaving_on_a_stale_stamp_is_called_off_and_sent_once_renewed(
    sandbox: Sandbox,
) -> None:
    """A hook after ours makes the stamp stale: no byte of the request reaches the
    server then; `sent_in_time` renews the stamp and the request goes once."""
    renewals: list[int] = []
    stale = [False]

    async def later_hook(request: httpx.Request) -> None:
        stale[0] = not renewals  # aged while httpx ran its hooks, before renewal

    async def renew() -> None:
        renewals.append(1)
        stale[0] = False

    stamp = RequestStamp(OPERATION, lambda: 0.0, lambda: not stale[0], renew)

    async def main() -> int:
        hooks = {"request": [http_pool.note_leaving, later_hook]}
        async with _api_client(sandbox, hooks) as client:
            with stamped(stamp):
                response = await http_pool.sent_in_time(lambda: client.get("/api/lists"))
        return response.status_code

    before = stamp_ages_noted(OPERATION)[0]
    assert asyncio.run(main()) == 200
    assert renewals == [1]
    assert stamp_ages_noted(OPERATION)[0] == before + 1  # only the request that went
    assert [r["path"] for r in sandbox.requests()] == ["/api/lists"], "it reached it once"


def test_a_stamp_stale_on_every_try_fails_the_call_with_nothing_sent(sandbox: Sandbox) -> None:
    async def stale_again() -> None:
        pass

    stamp = RequestStamp(OPERATION, lambda: 1.0, lambda: False, stale_again)
    seen_before = len(sandbox.requests())

    async def main() -> None:
        async with _api_client(sandbox, {"request": [http_pool.note_leaving]}) as client:
            with stamped(stamp):
                await http_pool.sent_in_time(lambda: client.get("/api/lists"))

    with pytest.raises(RetryableProviderError, match="none of it was sent"):
        asyncio.run(main())
    assert len(sandbox.requests()) == seen_before


def _api_client(sandbox: Sandbox, hooks: dict[str, list[Any]]) -> httpx.AsyncClient:
    """A client of the sandbox's API, whose requests it records."""
    headers = {"Authorization": f"Klaviyo-API-Key {API_KEY}", "revision": REVISION}
    return httpx.AsyncClient(base_url=sandbox.base_url, headers=headers, event_hooks=hooks)


def _always() -> bool:
    return True


async def _never() -> None:
    raise AssertionError("a fresh stamp is not renewed")
