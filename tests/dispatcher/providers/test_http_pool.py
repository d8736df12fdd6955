"""The provider clients' request hook (`http_pool.note_leaving`), on a real server: a
request stamped by the gate notes its stamp's age when its first bytes go, not when
httpx runs its hooks."""

from __future__ import annotations

import asyncio

import httpx

from dispatcher.providers import http_pool
from dispatcher.providers.base import stamped
from dispatcher.sandbox import Sandbox
from tests.dispatcher.helpers import stamp_ages_noted

OPERATION = "test-http-pool"


def test_the_age_is_read_as_the_request_goes(sandbox: Sandbox) -> None:
    """A hook after ours ages the stamp by 40 ms: the age noted is that of then."""
    age = [0.0]

    async def later_hook(request: httpx.Request) -> None:
        age[0] = 0.04

    async def main() -> None:
        hooks = {"request": [http_pool.note_leaving, later_hook]}
        async with httpx.AsyncClient(base_url=sandbox.base_url, event_hooks=hooks) as client:
            with stamped(OPERATION, lambda: age[0]):
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
            with stamped(OPERATION, lambda: 0.0):
                await client.get("/_sandbox/requests", extensions={"trace": own_trace})

    before = stamp_ages_noted(OPERATION)
    asyncio.run(main())
    assert "http11.send_request_headers.started" in events
    assert "http11.receive_response_headers.complete" in events
    assert stamp_ages_noted(OPERATION)[0] == before[0] + 1
