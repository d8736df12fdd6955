"""Each replica keeps held events alive by the events consumer's actual ack wait,
which another replica (configured differently) may have set after it started."""

from __future__ import annotations

import asyncio

import nats
from marketing_runtime import topology

from dispatcher.delivery.keepalive import AckWait, set_ack_wait
from tests.processes import NatsServer


def test_the_keepalive_interval_follows_the_consumers_ack_wait(own_nats: NatsServer) -> None:
    async def scenario() -> list[float]:
        nc = await nats.connect(own_nats.url)
        js = nc.jetstream()
        await topology.declare(js)
        stream, durable = topology.WORK_STREAM, topology.DISPATCH_EVENTS
        ours = AckWait(stream, durable, 30.0)
        await set_ack_wait(js, stream, durable, 30.0)  # this replica starts
        await ours.read(js)
        intervals = [ours.keepalive_s()]
        await set_ack_wait(js, stream, durable, 6.0)  # another replica, set to 6 s, starts
        sleeps: list[float] = []

        async def one_round(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) > 1:
                raise asyncio.CancelledError  # stop after one re-read

        following = asyncio.create_task(ours.follow(js, sleep=one_round))
        await asyncio.gather(following, return_exceptions=True)
        intervals.append(ours.keepalive_s())
        await set_ack_wait(js, stream, durable, topology.ACK_WAIT_S)  # as the next test expects
        await nc.close()
        return [*intervals, *sleeps]

    assert asyncio.run(scenario()) == [10.0, 2.0, 10.0, 2.0]
