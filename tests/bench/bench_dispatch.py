"""Figure 4: one dispatcher drains a pre-filled queue; the ceiling is the
sandbox itself taking 1,000-event bulk bodies from a plain KlaviyoClient."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from dispatcher.providers.base import TrackedEvent
from dispatcher.providers.klaviyo.client import KlaviyoClient
from tests.bench import payloads
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.stats import rate

TARGET = Target(">=", 10_000)
BULK = 1000


async def _post_all(url: str, chunks: Sequence[list[TrackedEvent]], in_flight: int) -> float:
    """Seconds to post every chunk, `in_flight` calls at a time."""
    queue = iter(chunks)
    async with KlaviyoClient("bench-key", base_url=url, timeout_s=60) as client:

        async def worker() -> None:
            for chunk in queue:
                await client.create_events([client.prepare_event(e) for e in chunk])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return time.perf_counter() - started


async def sandbox_ceiling(b: Bench) -> float:
    """Events/s the sandbox accepts in bulk; the better of 1 and 4 calls in flight."""
    events = [
        payloads.tracked_event(e) for e in payloads.events(f"{b.tag}-ceil", b.cfg.ceiling_events)
    ]
    chunks = [events[i : i + BULK] for i in range(0, len(events), BULK)]
    await b.sandbox.reset()
    best = 0.0
    for in_flight in (1, 4):
        seconds = await _post_all(b.sandbox.base_url, chunks, in_flight)
        found = len(await b.sandbox.event_counts())
        await b.sandbox.reset()
        assert found == len(events), f"sandbox kept {found} of {len(events)}"
        b.results[f"sandbox_ceiling_{in_flight}_in_flight_events_per_s"] = rate(
            len(events), seconds
        )
        b.note(f"sandbox bulk ceiling, {in_flight} in flight: {rate(len(events), seconds):,.0f}/s")
        best = max(best, rate(len(events), seconds))
    b.results["sandbox_ceiling_events_per_s"] = best
    return best


async def run(b: Bench) -> None:
    ceiling = await sandbox_ceiling(b)
    ids = list(b.queued)
    b.queued.clear()
    spawned = time.time()
    b.stack.start_dispatcher()
    counts = await b.sandbox.wait_for(ids, b.cfg.timeout_s, poll_s=0.25)
    first, last, calls = await b.sandbox.receipt_span()
    lost = sum(i not in counts for i in ids)
    duplicates = sum(counts.get(i, 0) > 1 for i in ids)
    total = rate(len(ids), last - spawned)
    steady = rate(len(ids), last - first)
    b.note(
        f"dispatch of {len(ids):,} queued events: {last - spawned:.2f} s from spawn "
        f"({total:,.0f}/s), {last - first:.2f} s first to last receipt ({steady:,.0f}/s), "
        f"{calls} provider calls, lost {lost}, duplicates {duplicates}"
    )
    b.results.update(
        dispatch_events_per_s=total,
        dispatch_steady_events_per_s=steady,
        dispatch_events=len(ids),
        dispatch_startup_s=first - spawned,
        dispatch_provider_calls=calls,
        dispatch_lost=lost,
        dispatch_duplicates=duplicates,
    )
    b.rows += [
        Row("dispatch_events_per_s", total, "ev/s", f"sandbox bulk {ceiling:,.0f} ev/s", TARGET),
        Row("dispatch_steady_events_per_s", steady, "ev/s", "first to last receipt"),
    ]
    b.results["dispatch_results_catchup_s"] = await b.settle(dispatcher=True, label="dispatch")
    await b.sandbox.reset()
