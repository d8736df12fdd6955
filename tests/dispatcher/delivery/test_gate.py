"""The provider gate on a virtual clock: after a 429 no call to that endpoint goes
out before its Retry-After, even one that was already waiting when a later 429
asked for longer; other endpoints are not held up; a Retry-After is capped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dispatcher.delivery.gate import MAX_RETRY_AFTER_S, ProviderGate
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
        assert gate.pause_left("x") == 60
        waiting = asyncio.create_task(gate.call("x", 1, fine))
        await asyncio.sleep(0)
        release.set()  # the call in flight is throttled for longer
        with pytest.raises(RetryableProviderError):
            await in_flight
        assert gate.pause_left("x") == 90

        async def settle() -> None:
            await asyncio.sleep(0)

        await clock.advance_until(waiting.done, settle, limit_s=1000)
        await waiting

    asyncio.run(main())
    assert made_at == [90.0]
    assert ProviderGate(monotonic=lambda: 5.0).pause_left("x") == 0.0


async def _throttle(gate: ProviderGate, operation: str, retry_after: float) -> float | None:
    """One call of `operation` answered 429; the retry_after the caller sees."""

    async def throttled() -> None:
        raise RetryableProviderError("429", status=429, retry_after=retry_after)

    with pytest.raises(RetryableProviderError) as raised:
        await gate.call(operation, 1, throttled)
    return raised.value.retry_after


def test_a_throttled_endpoint_holds_up_no_other() -> None:
    clock = VirtualClock()
    gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
    made: list[tuple[str, float]] = []

    async def main() -> None:
        await _throttle(gate, "create_events", 60)

        async def record(operation: str) -> None:
            made.append((operation, clock.now))

        assert gate.pause_left("create_events") == 60
        assert gate.pause_left("unsubscribe", "suppress") == 0
        assert gate.pause_left("unsubscribe", "create_events") == 60
        calls = [
            asyncio.create_task(gate.call("create_events", 1, lambda: record("events"))),
            asyncio.create_task(gate.call("unsubscribe", 1, lambda: record("unsubscribe"))),
        ]

        async def settle() -> None:
            await asyncio.sleep(0)

        await clock.advance_until(lambda: all(c.done() for c in calls), settle, limit_s=1000)
        await asyncio.gather(*calls)

    asyncio.run(main())
    assert made == [("unsubscribe", 0.0), ("events", 60.0)]


def test_a_retry_after_beyond_the_cap_is_capped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
    caplog.set_level(logging.WARNING, logger="dispatcher.delivery.gate")

    async def main() -> tuple[float | None, float | None]:
        within = await _throttle(gate, "subscribe", MAX_RETRY_AFTER_S)
        assert not caplog.records, "a Retry-After within the cap is taken as it is"
        beyond = await _throttle(gate, "request_erasure", 86_400)
        return within, beyond

    within, beyond = asyncio.run(main())
    assert (within, beyond) == (MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_S)
    assert gate.pause_left("request_erasure") == MAX_RETRY_AFTER_S
    (record,) = caplog.records
    assert "request_erasure" in record.getMessage() and "86400" in record.getMessage()
