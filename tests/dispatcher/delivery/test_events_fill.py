"""When calls are the scarce resource, event batches fill up. Two replicas with a
0.2 s linger at low load (100 events a second, far below the bulk endpoint's
bound) used to spend the minute's 150 calls on small batches within its first
seconds; now a batch that is not full keeps taking events until a call is
available at the steady pace (one each 0.4 s), so the minute is never used up.
Replicas, NATS and the sandbox as in tests/dispatcher/budget/provider_site.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from marketing_runtime import topology

from tests.dispatcher.budget.helpers import most_in_any_window
from tests.dispatcher.budget.provider_site import EVENT_CALLS, Site, event
from tests.processes import NatsServer

SPEED = 10.0
MARGIN_S = 0.3
RATE = 100  # events a (virtual) second, at most
SECONDS = 40


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server.url
    server.stop()


def test_batches_fill_up_instead_of_spending_the_minute_on_small_calls(nats_url: str) -> None:
    site = Site(nats_url, speed=SPEED, margin_s=MARGIN_S)
    tag = uuid.uuid4().hex[:8]
    ids = [f"slow-{tag}-{i}" for i in range(RATE * SECONDS)]
    published = [0.0, 0.0]  # from, until (virtual seconds)

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await topology.declare(js)
        try:
            for _ in range(2):
                # 0.2 s of linger on the sped-up clock (the fetch lingers in real time)
                replica = site.start_replica(linger_s=0.2 / SPEED)
                assert await replica.bus.wait_ready(30)
            published[0] = site.clock.monotonic()
            for start in range(0, len(ids), RATE // 10):
                await asyncio.gather(
                    *(
                        js.publish(topology.EVENTS_SUBJECT, event(i))
                        for i in ids[start : start + RATE // 10]
                    )
                )
                await site.clock.sleep(0.1)
            published[1] = site.clock.monotonic()
            await site.run_until_acked(js, timeout_s=60)
        finally:
            await site.stop()
            await nc.close()

    asyncio.run(scenario())

    assert site.throttled() == [] and site.sandbox_saw_too_many() == {}
    counts = site.sandbox.event_counts()
    assert all(counts.get(i) == 1 for i in ids)
    calls = sorted(t for path in EVENT_CALLS for t in site.times(path))
    per_call = len(ids) / len(calls)
    print(f"{len(calls)} calls for {len(ids)} events ({per_call:.0f} a call)")
    # One call each 0.4 s at most, however many loops want one: the minute's
    # 150 are never all spent, and each call carries what 0.4 s brought.
    assert most_in_any_window(calls, 10.0) <= 10 / 0.4 + 1
    assert most_in_any_window(calls, 60.0) < 150
    # (publishing takes real time, so the rate on the sped-up clock is below RATE)
    rate = len(ids) / (published[1] - published[0])
    assert per_call >= rate * 0.4 * 0.8
