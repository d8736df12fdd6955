"""`pause_until` (marketing_runtime.clock): a pause ends at the first of its
events or its seconds, and never begins when an event is already set."""

from __future__ import annotations

import asyncio

from marketing_runtime.clock import pause, pause_until

FOREVER_S = 3600.0


def test_a_pause_ends_when_any_of_its_events_is_set() -> None:
    async def main() -> None:
        first, second = asyncio.Event(), asyncio.Event()
        paused = asyncio.create_task(pause_until((first, second), FOREVER_S))
        await asyncio.sleep(0)
        assert not paused.done()
        second.set()
        await asyncio.wait_for(paused, 10)

    asyncio.run(main())


def test_a_pause_whose_event_is_set_does_not_wait() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def main() -> None:
        stopping = asyncio.Event()
        stopping.set()
        await pause_until((asyncio.Event(), stopping), FOREVER_S, sleep)
        await pause(stopping, FOREVER_S, sleep)

    asyncio.run(main())
    assert slept == []


def test_a_pause_ends_after_its_seconds_by_its_sleep() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def main() -> None:
        await asyncio.wait_for(pause_until((asyncio.Event(),), 2.5, sleep), 10)

    asyncio.run(main())
    assert slept == [2.5]
