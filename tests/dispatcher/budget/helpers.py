"""Helpers for the budget's tests: budgets of several replicas on one real NATS KV
bucket and one virtual clock, and what a provider with fixed windows would count."""

from __future__ import annotations

import asyncio
import bisect
import math
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import nats
from marketing_runtime import topology
from nats.js.kv import KeyValue

from dispatcher.budget import SharedBudget
from dispatcher.budget.log import BucketLog
from dispatcher.providers.base import Limits, OperationLimits, RateBucket, RateWindow
from tests.dispatcher.virtual_clock import VirtualClock

EPOCH0 = 1_800_000_000.0  # where the virtual wall clock starts (aligned to every window)


@asynccontextmanager
async def budget_kv(nats_url: str) -> AsyncIterator[KeyValue]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await topology.declare(js)
        yield await js.key_value(topology.BUDGET_BUCKET)
    finally:
        await nc.close()


def limits(rates: dict[str, tuple[RateBucket, ...]], compliance: Iterable[str] = ()) -> Limits:
    return Limits(
        create_events=OperationLimits(max_items=1000),
        consent={},
        rates=rates,
        compliance=frozenset(compliance),
    )


def bucket(
    name: str, *windows: tuple[int, float], clock_aligned: bool = False
) -> tuple[RateBucket, ...]:
    """One bucket of these windows; `clock_aligned`: each begins at whole multiples of
    its length on the clock (a call's own second can then be full when it is taken
    again in the next)."""
    made = tuple(RateWindow(calls, seconds, clock_aligned) for calls, seconds in windows)
    return (RateBucket(name, made),)


async def entry_stamps(kv: KeyValue, key: str) -> list[float]:
    """The stamps a bucket's entry holds (those given back are gone), virtual s."""
    entry = await kv.get(key)
    assert entry.value is not None
    return [s - EPOCH0 for s in BucketLog.decode(entry.value).stamps]


def replicas(
    kv: KeyValue,
    rates: Limits,
    clock: VirtualClock,
    count: int,
    *,
    margin_s: float = 0.1,
    account: str | None = None,
) -> list[SharedBudget]:
    """`count` replicas' budgets of one account (a new one unless named), on `clock`."""
    account = account or new_account()
    return [
        SharedBudget(
            kv,
            account,
            rates,
            margin_s=margin_s,
            epoch=lambda: EPOCH0 + clock.now,
            sleep=clock.sleep,
        )
        for _ in range(count)
    ]


class WatchedKV:
    """A replica's KV whose writes a test watches: `before_write` may refuse one (by
    raising, as a KV out of reach would), `after_write` may hold its answer back."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def get(self, key: str) -> Any:
        return await self._kv.get(key)

    async def create(self, key: str, value: bytes) -> int:
        self.before_write(key, value)
        revision = await self._kv.create(key, value)
        await self.after_write(key)
        return revision

    async def update(self, key: str, value: bytes, last: int | None = None) -> int:
        self.before_write(key, value)
        revision = await self._kv.update(key, value, last=last)
        await self.after_write(key)
        return revision

    def before_write(self, key: str, value: bytes) -> None:
        """Called before each write."""

    async def after_write(self, key: str) -> None:
        """Called once each write reached the server, before its answer is returned."""


def new_account() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


async def run_on_clock(clock: VirtualClock, tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Move virtual time only while every unfinished task sleeps on it (their KV
    round trips are real I/O, settled first), until all are done."""

    async def settle() -> None:
        for _ in range(2000):
            if clock.sleepers() >= sum(not t.done() for t in tasks):
                return
            await asyncio.sleep(0.001)
        raise AssertionError("tasks neither finish nor sleep")

    await clock.advance_until(lambda: all(t.done() for t in tasks), settle, limit_s=100_000)
    for task in tasks:
        task.result()


def most_in_any_window(times: Sequence[float], seconds: float) -> int:
    """The most of `times` in one window of `seconds`, however the windows are aligned
    (the provider's alignment is unknown): a window starting at each time covers it."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + seconds) - i for i, t in enumerate(ordered)), default=0
    )


def most_in_fixed_windows(times: Sequence[float], seconds: float, *, offset: float = 0.0) -> int:
    """The most of `times` in one window aligned to epoch time (floor(t / seconds)), or
    beginning at `offset` and every `seconds` from it."""
    counts: dict[int, int] = {}
    for t in times:
        window = math.floor(round(t - offset, 6) / seconds)
        counts[window] = counts.get(window, 0) + 1
    return max(counts.values(), default=0)
