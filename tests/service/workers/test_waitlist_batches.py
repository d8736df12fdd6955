"""The flow worker's waitlist loops: after a pause, a batch of one message's worth
of beginnings (a restock's first notifications reach the provider sooner), then
full batches while they come back full, and a pause after a short one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import cast

import pytest

from service.storage.database import Database
from service.workers import flow_worker
from service.workers.flow_worker import FlowWorker, TimerSettings

SLEEP_S = 0.25


def _batches(
    taken: list[int], waitlist_batch: int, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[int | None, float]]:
    """(what one waitlist loop asked for, its pause after) batch after batch, when its
    batches took `taken` in turn."""
    seen: list[tuple[int | None, float]] = []
    worker = FlowWorker(
        cast(Database, None),
        lambda: datetime.now(UTC),
        TimerSettings(waitlist_batch=waitlist_batch, max_sleep_s=SLEEP_S),
    )
    asked: list[int | None] = []

    async def notify_once(most: int | None = None) -> int:
        asked.append(most)
        return taken[len(asked) - 1]

    async def steps(
        what: str,
        step: Callable[[], Awaitable[int]],
        pause: Callable[[int], Awaitable[float]],
        *_: object,
        wake: object = None,
    ) -> None:
        assert wake is worker._restocked, "a restock must end the loop's pause"
        for _batch in taken:  # the loop's steps and pauses, without the waits
            done = await step()
            seen.append((asked[-1], await pause(done)))

    worker.notify_once = notify_once  # type: ignore[method-assign]
    monkeypatch.setattr(flow_worker, "repeat", steps)
    asyncio.run(worker._waitlist_loop())
    return seen


def test_a_waitlist_loop_asks_a_messages_worth_after_a_pause_then_full_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = [1000, 2000, 2000, 700, 0, 1000, 300]
    assert _batches(taken, 2000, monkeypatch) == [
        (1000, 0.0),
        (2000, 0.0),
        (2000, 0.0),
        (2000, SLEEP_S),  # short: nothing more to take now
        (1000, SLEEP_S),
        (1000, 0.0),
        (2000, SLEEP_S),
    ]


def test_batches_smaller_than_a_message_are_all_alike_and_a_short_one_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _batches([300, 100, 300], 300, monkeypatch) == [
        (300, 0.0),
        (300, SLEEP_S),
        (300, 0.0),
    ]
