"""The lean pull consumer against a real nats-server: batches in stream order,
nothing lost or handed out twice across fetches, leftovers released for
redelivery, and a missing consumer reported instead of spun on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest
from marketing_runtime.pull import ConsumerUnavailable, PullConsumer
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from tests.harness import eventually
from tests.processes import NatsServer

Scenario = Callable[[Any, Any, str], Awaitable[None]]
# A sixth of the ack wait, not the dispatcher's third: a loaded test machine may
# stall the keeper for seconds, which is not what this test is about.
KEPT_ACK_WAIT_S = 3
KEEPALIVE_S = 0.5


def _run(
    nats_server: NatsServer, scenario: Scenario, messages: int, ack_wait_s: float = 30
) -> None:
    async def main() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        name = f"PULL_{uuid.uuid4().hex[:8]}"
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.x"]))
        config = ConsumerConfig(
            durable_name="d", ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait_s
        )
        await js.add_consumer(name, config)
        for i in range(messages):
            await js.publish(f"{name}.x", str(i).encode())
        try:
            await scenario(nc, js, name)
        finally:
            await js.delete_stream(name)
            await nc.close()

    asyncio.run(main())


def test_batches_come_in_order_and_nothing_twice(nats_server: NatsServer) -> None:
    async def scenario(nc: Any, js: Any, name: str) -> None:
        puller = PullConsumer(nc, stream=name, durable="d")
        seen: list[int] = []
        while len(seen) < 250:
            batch = await puller.fetch(40, wait_s=2.0, linger_s=0.05)
            assert 0 < len(batch) <= 40
            seen += [int(m.data) for m in batch]
            for msg in batch:
                await msg.ack()
        assert seen == list(range(250))
        assert await puller.fetch(40, wait_s=0.3, linger_s=0.05) == []
        await puller.close()

    _run(nats_server, scenario, messages=250)


def test_released_leftovers_are_delivered_again(nats_server: NatsServer) -> None:
    async def scenario(nc: Any, js: Any, name: str) -> None:
        puller = PullConsumer(nc, stream=name, durable="d")
        first = await puller.fetch(5, wait_s=2.0, linger_s=0.5)
        assert [int(m.data) for m in first] == [0, 1, 2, 3, 4]
        for msg in first:
            await msg.ack()
        await puller.close()  # anything it still kept is handed back
        again = PullConsumer(nc, stream=name, durable="d")
        rest = await _taken(again, 5, "the released messages did not come back")
        assert sorted(rest) == [5, 6, 7, 8, 9]
        await again.close()

    _run(nats_server, scenario, messages=10)


def test_a_missing_consumer_is_reported(nats_server: NatsServer) -> None:
    async def scenario(nc: Any, js: Any, name: str) -> None:
        puller = PullConsumer(nc, stream=name, durable="no-such-consumer")
        with pytest.raises(ConsumerUnavailable):
            await asyncio.wait_for(puller.fetch(10, wait_s=5.0, linger_s=0.0), 10)
        await puller.close()

    _run(nats_server, scenario, messages=0)


def test_messages_kept_for_the_next_fetch_are_kept_alive(nats_server: NatsServer) -> None:
    """The caller may be busy longer than the ack wait (say, waiting out a
    provider's Retry-After): what arrived for it meanwhile is not redelivered."""

    async def scenario(nc: Any, js: Any, name: str) -> None:
        progress: dict[str, int] = {}

        async def record(msg: Any) -> None:
            if msg.data == b"+WPI":
                progress[msg.subject] = progress.get(msg.subject, 0) + 1

        await nc.subscribe("$JS.ACK.>", cb=record)
        puller = PullConsumer(nc, stream=name, durable="d", keepalive_s=lambda: KEEPALIVE_S)
        await js.publish(f"{name}.x", b"0")
        (first,) = await puller.fetch(10, wait_s=30.0, linger_s=0.0)  # 9 more still owed
        await first.ack()
        for i in (1, 2, 3):
            await js.publish(f"{name}.x", str(i).encode())  # arrive while nobody fetches

        # Kept alive for well over the ack wait: 8 progress acks each, 0.5 s apart.
        await eventually(lambda: _at_least(progress, 3, 8), timeout_s=30)
        kept = await puller.fetch(10, wait_s=0.5, linger_s=0.0)
        assert [int(m.data) for m in kept] == [1, 2, 3]
        assert [m.metadata.num_delivered for m in kept] == [1, 1, 1], "redelivered meanwhile"
        assert set(progress) == {m.reply for m in kept}
        assert (await js.consumer_info(name, "d")).num_redelivered == 0
        for msg in kept:
            await msg.ack()
        await puller.close()

    _run(nats_server, scenario, messages=0, ack_wait_s=KEPT_ACK_WAIT_S)


async def _at_least(counts: dict[str, int], keys: int, each: int) -> bool:
    return len(counts) >= keys and all(n >= each for n in counts.values())


def test_a_fetch_bounded_by_bytes_takes_what_fits_and_the_rest_comes_next(
    nats_server: NatsServer,
) -> None:
    """Each pull request asks for at most `max_bytes` (the server ends it early, with a
    status, once the next message would not fit): batches stay within the bound, in
    order, and nothing is lost or handed out twice."""
    payload = 50_000

    async def scenario(nc: Any, js: Any, name: str) -> None:
        for i in range(12):
            await js.publish(f"{name}.x", str(i).encode().ljust(payload, b" "))
        puller = PullConsumer(nc, stream=name, durable="d")
        seen: list[int] = []
        sizes: list[int] = []
        while len(seen) < 12:
            batch = await puller.fetch(10, wait_s=2.0, linger_s=0.2, max_bytes=3 * payload + 1000)
            assert batch, "every fetch brings something"
            sizes.append(len(batch))
            seen += [int(m.data) for m in batch]
            for msg in batch:
                await msg.ack()
        assert seen == list(range(12))
        assert max(sizes) <= 3 < 10

    _run(nats_server, scenario, 0)


def test_a_batch_asked_for_ahead_comes_in_the_next_fetch(nats_server: NatsServer) -> None:
    """Asked for while the batch before is handled, the next batch comes meanwhile and
    the next fetch takes it: in order, nothing lost or twice, and then nothing pending."""

    async def scenario(nc: Any, js: Any, name: str) -> None:
        puller = PullConsumer(nc, stream=name, durable="d")
        first = await puller.fetch(2, wait_s=2.0, linger_s=0.05)  # its request is answered
        assert [int(m.data) for m in first] == [0, 1]
        assert await puller.request_ahead(10, expires_s=5.0), "a request went out"
        assert not await puller.request_ahead(10, expires_s=5.0), "the open one covers it"
        for i in range(2, 5):  # published while the first batch is handled
            await js.publish(f"{name}.x", str(i).encode())
        # They come on the request made ahead, before any fetch asks.
        await eventually(lambda: _unacked(js, name, 5))
        for msg in first:
            await msg.ack()
        seen = await _taken(puller, 3, "what was asked for ahead did not come")
        assert seen == [2, 3, 4]
        assert await puller.fetch(10, wait_s=0.3, linger_s=0.05) == []
        await puller.close()
        info = await js.consumer_info(name, "d")
        assert (info.num_pending, info.num_ack_pending) == (0, 0)

    _run(nats_server, scenario, messages=2)


def test_batches_asked_for_ahead_stay_within_their_bytes(nats_server: NatsServer) -> None:
    """Asked for ahead after each fetch, as the consume loop does: no batch handed out
    passes one request's bytes, however much came ahead, and all come in order."""
    payload = 50_000
    max_bytes = 3 * payload + 1000

    async def scenario(nc: Any, js: Any, name: str) -> None:
        for i in range(12):
            await js.publish(f"{name}.x", str(i).encode().ljust(payload, b" "))
        puller = PullConsumer(nc, stream=name, durable="d")
        seen: list[int] = []
        while len(seen) < 12:
            batch = await puller.fetch(10, wait_s=2.0, linger_s=0.2, max_bytes=max_bytes)
            assert 0 < sum(len(m.data) for m in batch) <= max_bytes
            await puller.request_ahead(10, expires_s=2.0, max_bytes=max_bytes)
            seen += [int(m.data) for m in batch]
            for msg in batch:
                await msg.ack()
        assert seen == list(range(12))
        await puller.close()

    _run(nats_server, scenario, 0)


async def _unacked(js: Any, name: str, count: int) -> bool:
    info = await js.consumer_info(name, "d")
    return bool(info.num_ack_pending == count)


async def _taken(puller: PullConsumer, count: int, missing: str) -> list[int]:
    """`count` messages fetched in batches of up to 10 and acked, as numbers; every
    fetch must bring some (`missing` says what did not come)."""
    seen: list[int] = []
    while len(seen) < count:
        batch = await puller.fetch(10, wait_s=2.0, linger_s=0.05)
        assert batch, missing
        seen += [int(m.data) for m in batch]
        for msg in batch:
            await msg.ack()
    return seen


def test_a_batch_holding_enough_bytes_goes_without_its_linger(nats_server: NatsServer) -> None:
    """A message of many pieces of work (a restock's thousand beginnings) is enough for
    a call: the fetch hands it over once it came, first or while the batch lingered,
    not after the linger (30 s here, with as long a wait: a fetch that lingered would
    outlast the test's 10 s). What comes after is the next fetch's."""
    big = 60_000

    async def scenario(nc: Any, js: Any, name: str) -> None:
        puller = PullConsumer(nc, stream=name, durable="d")

        async def fetch() -> list[Any]:
            batch = puller.fetch(10, wait_s=30.0, linger_s=30.0, enough_bytes=50_000)
            return await asyncio.wait_for(batch, 10)

        await js.publish(f"{name}.x", b"0".ljust(big, b" "))
        assert [int(m.data) for m in await fetch()] == [0]
        await js.publish(f"{name}.x", b"1")  # small: the batch lingers...
        lingering = asyncio.create_task(fetch())

        async def small_one_kept() -> bool:
            return bool(puller._buffer)  # the fetch has it, and lingers for more

        await eventually(small_one_kept)
        await js.publish(f"{name}.x", b"2".ljust(big, b" "))  # ...until this one comes
        assert [int(m.data) for m in await lingering] == [1, 2]
        await js.publish(f"{name}.x", b"3")
        later = await puller.fetch(10, wait_s=5.0, linger_s=0.0)
        assert [int(m.data) for m in later] == [3]
        await puller.close()

    _run(nats_server, scenario, 0)
