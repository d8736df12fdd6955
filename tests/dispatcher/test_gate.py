"""The provider gate on a virtual clock: after a 429 no call goes out before
its Retry-After, even one that was already waiting when a later 429 asked for longer."""

from __future__ import annotations

import asyncio

import pytest

from dispatcher.gate import ProviderGate
from dispatcher.providers.errors import RetryableProviderError
from tests.dispatcher.virtual_clock import VirtualClock


def test_a_waiting_call_waits_for_the_longest_retry_after() -> None:
    clock = VirtualClock()
    gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
    made_at: list[float] = []

    async def throttled(retry_after: float, release: asyncio.Event | None = None) -> None:
        if release is not None:
            await release.wait()
        raise RetryableProviderError("429", status=429, retry_after=retry_after)

    async def fine() -> None:
        made_at.append(clock.now)

    async def main() -> None:
        release = asyncio.Event()
        in_flight = asyncio.create_task(gate.call("x", 1, lambda: throttled(90, release)))
        await asyncio.sleep(0)  # sent before any throttle
        with pytest.raises(RetryableProviderError):
            await gate.call("x", 1, lambda: throttled(60))
        assert gate.pause_left() == 60
        waiting = asyncio.create_task(gate.call("x", 1, fine))
        await asyncio.sleep(0)
        release.set()  # the call in flight is throttled for longer
        with pytest.raises(RetryableProviderError):
            await in_flight
        assert gate.pause_left() == 90

        async def settle() -> None:
            await asyncio.sleep(0)

        await clock.advance_until(waiting.done, settle, limit_s=1000)
        await waiting

    asyncio.run(main())
    assert made_at == [90.0]
    assert ProviderGate(monotonic=lambda: 5.0).pause_left() == 0.0
