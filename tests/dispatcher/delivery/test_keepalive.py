"""Keeping held messages alive: +WPI every third of the consumer's actual ack wait
(which another replica, configured differently, may have set after this one
started), on a virtual clock, observed on the wire."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import nats
from marketing_runtime import topology
from marketing_runtime.pull import PullConsumer
from nats.aio.msg import Msg

from dispatcher.delivery.keepalive import AckWait, holding, keepalive_every, set_ack_wait
from tests.dispatcher.virtual_clock import VirtualClock
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


def test_held_messages_get_a_wpi_every_third_of_the_ack_wait_until_settled(
    own_nats: NatsServer,
) -> None:
    """Two messages held: +WPI for both at 10, 20, 30 s (ack wait 30 s); one is
    settled at 30 s and gets nothing more; the other is kept alive until it is
    handed back at 60 s, and nothing follows its nak."""
    clock = VirtualClock()
    wire: dict[str, list[tuple[float, bytes]]] = defaultdict(list)

    async def scenario() -> list[Msg]:
        nc = await nats.connect(own_nats.url)
        js = nc.jetstream()
        await topology.declare(js)
        observer = await nats.connect(own_nats.url)

        async def record(msg: Msg) -> None:
            wire[msg.subject].append((clock.now, msg.data))

        await observer.subscribe("$JS.ACK.>", cb=record)
        for i in range(2):
            await js.publish(topology.CONTACTS_SUBJECT, f"held-{i}".encode())
        puller = PullConsumer(nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_CONTACTS)
        messages = await puller.fetch(2, wait_s=5, linger_s=1)
        settled = messages[0]

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)
            await nc.flush()
            await observer.flush()

        async with holding(
            messages, every_s=lambda: keepalive_every(30.0), sleep=clock.sleep
        ) as held:
            await clock.advance_until(lambda: clock.now >= 30, settle, limit_s=100)
            held.settled([settled])
            await settled.ack()
            await clock.advance_until(lambda: clock.now >= 60, settle, limit_s=100)
            assert await held.hand_back() == 1
            await settle()
        assert clock.sleepers() == 0, "the keepalive stops with the block"
        await puller.close()
        await observer.close()
        await nc.close()
        return messages

    settled, kept = asyncio.run(scenario())

    assert wire[settled.reply] == [
        (10.0, b"+WPI"),
        (20.0, b"+WPI"),
        (30.0, b"+WPI"),
        (30.0, b""),  # nats-py acks with an empty payload, which is +ACK
    ]
    assert wire[kept.reply] == [
        *((float(t), b"+WPI") for t in range(10, 70, 10)),
        (60.0, b"-NAK"),
    ]
