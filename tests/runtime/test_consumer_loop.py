"""The consume loop against a real nats-server: while `hold_off` asks it to
wait, it sends no pull request at all; afterwards it fetches as usual."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import nats
from marketing_runtime.connection import Bus
from marketing_runtime.consumer_loop import consume
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from tests.harness import eventually, until_true
from tests.processes import NatsServer

# How long a test's pull requests stay open (consume's `wait_s`), where they must expire.
EXPIRY_S = 0.05


def test_nothing_is_fetched_while_held_off(nats_server: NatsServer) -> None:
    async def main() -> None:
        bus, js, name = await _stream(nats_server, "test-consume", "HOLD")
        observer = await nats.connect(nats_server.url)
        pulls: list[bytes] = []

        async def pulled(msg: Msg) -> None:
            pulls.append(msg.data)

        await observer.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{name}.d", cb=pulled)
        await observer.flush()
        await js.publish(f"{name}.x", b"waiting")
        handled: list[bytes] = []
        asked = [0]
        holding = [True]

        def hold_off() -> float:
            asked[0] += 1
            return 0.05 if holding[0] else 0.0

        async def handle(messages: list[Msg]) -> None:
            handled.extend(m.data for m in messages)
            for msg in messages:
                await msg.ack()

        stopping, loop = _consuming(bus, name, handle, hold_off=hold_off)
        await until_true(lambda: asked[0] >= 10)
        await observer.flush()
        assert (pulls, handled) == ([], []), "fetched while held off"
        holding[0] = False
        await until_true(lambda: handled == [b"waiting"])
        assert pulls, "fetches once the hold is over"
        stopping.set()
        await loop
        await js.delete_stream(name)
        await observer.close()
        await bus.close()

    asyncio.run(main())


def _consuming(
    bus: Bus, name: str, handle: Any, **options: Any
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    """The consume loop over the stream's consumer "d", running: its stop, and its task
    (`handle` is a continuing handler when `continuing=True` is among the options)."""
    stopping = asyncio.Event()
    handler = {"continuing" if options.pop("continuing", False) else "handle": handle}
    loop = asyncio.create_task(
        consume(bus, stream=name, durable="d", stopping=stopping, **handler, **options)
    )
    return stopping, loop


async def _settled(js: Any, name: str) -> bool:
    info = await js.consumer_info(name, "d")
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def _stream(nats_server: NatsServer, client: str, prefix: str) -> tuple[Bus, Any, str]:
    """A bus connection named `client`, and a stream of its own (`<prefix>_…`, subject
    `<name>.x`) with a durable consumer "d" acking explicitly."""
    bus = Bus(nats_server.url, name=client)
    bus.start()
    assert await bus.wait_ready(30)
    js = bus.js
    assert js is not None
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.x"]))
    await js.add_consumer(name, ConsumerConfig(durable_name="d", ack_policy=AckPolicy.EXPLICIT))
    return bus, js, name


def test_a_batch_keeps_filling_while_its_call_would_wait(nats_server: NatsServer) -> None:
    """Events trickle in; while `fill_wait` says the handler's call is not available
    the batch keeps taking them, so one call carries them all."""

    async def main() -> list[list[bytes]]:
        bus, js, name = await _stream(nats_server, "test-consume-fill", "FILL")
        batches: list[list[bytes]] = []
        available = asyncio.Event()

        async def fill_wait(messages: list[Msg]) -> float:
            return 0.0 if available.is_set() else 0.05

        async def handle(messages: list[Msg]) -> None:
            batches.append([m.data for m in messages])
            for msg in messages:
                await msg.ack()

        stopping, loop = _consuming(
            bus, name, handle, batch=100, linger_s=0.01, fill_wait=fill_wait
        )
        for i in range(20):
            await js.publish(f"{name}.x", b"%d" % i)
            await asyncio.sleep(0.02)  # far apart: each would be a batch of its own
        available.set()
        await until_true(lambda: sum(map(len, batches)) == 20)
        stopping.set()
        await loop
        await js.delete_stream(name)
        await bus.close()
        return batches

    batches = asyncio.run(main())
    assert batches == [[b"%d" % i for i in range(20)]]


def test_reading_ahead_hands_over_every_message_once_in_order(nats_server: NatsServer) -> None:
    """With `read_ahead`, the next batch is asked for while a batch is handled (more
    are published while the first is): every message is still handed over once, in
    stream order, in batches of at most `batch`, and nothing is left pending."""

    async def main() -> tuple[list[list[bytes]], int, int]:
        bus, js, name = await _stream(nats_server, "test-consume-ahead", "AHEAD")
        batches: list[list[bytes]] = []
        published = [0]

        async def handle(messages: list[Msg]) -> None:
            batches.append([m.data for m in messages])
            if len(batches) == 1:  # the rest is published, and asked for ahead, meanwhile
                await until_true(lambda: published[0] == 60)
            for msg in messages:
                await msg.ack()

        stopping, loop = _consuming(bus, name, handle, batch=7, linger_s=0.01, read_ahead=True)
        for i in range(60):
            await js.publish(f"{name}.x", b"%d" % i)
            published[0] += 1
        await until_true(lambda: sum(map(len, batches)) >= 60)
        stopping.set()
        await loop
        await eventually(lambda: _settled(js, name))  # the server takes acks in its own time
        info = await js.consumer_info(name, "d")
        await js.delete_stream(name)
        await bus.close()
        return batches, info.num_pending, info.num_ack_pending

    batches, pending, unacked = asyncio.run(main())
    assert [m for b in batches for m in b] == [b"%d" % i for i in range(60)]
    assert all(0 < len(b) <= 7 for b in batches)
    assert (pending, unacked) == (0, 0)


def test_a_continuing_handler_takes_what_came_meanwhile_as_more_of_its_batch(
    nats_server: NatsServer,
) -> None:
    """A continuing handler's `more()` takes what came while it handled its batch
    (asked for ahead), in stream order, and lets go of what the handler settled;
    once none has come it gives nothing, and the next batch is fetched as ever.
    Every message is handled once."""

    async def main() -> tuple[list[list[bytes]], list[int], list[int]]:
        bus, js, name = await _stream(nats_server, "test-consume-more", "MORE")
        handled: list[list[bytes]] = []  # per call of the handler: its batch, then each more
        kept_settled: list[int] = []  # settled messages still in the batch after a more()
        published = [0]

        async def handle(messages: list[Msg], more: Any) -> None:
            taken = [list(messages)]
            first = not handled
            if first:  # the rest is published, and asked for ahead, meanwhile
                await until_true(lambda: published[0] == 30)
            for msg in messages:
                await msg.ack()
            batch = await _once_come(more) if first else await more()
            while batch:
                kept_settled.append(sum(m.is_acked for m in messages))
                taken.append(batch)
                for msg in batch:
                    await msg.ack()
                batch = await more()
            handled.append([m.data for batch in taken for m in batch])

        stopping, loop = _consuming(
            bus, name, handle, continuing=True, batch=4, linger_s=0.01, read_ahead=True
        )
        await js.publish(f"{name}.x", b"0")
        published[0] += 1
        for i in range(1, 30):
            await js.publish(f"{name}.x", b"%d" % i)
            published[0] += 1
        await until_true(lambda: sum(map(len, handled)) >= 30)
        stopping.set()
        await loop
        await eventually(lambda: _settled(js, name))
        await js.delete_stream(name)
        await bus.close()
        return handled, [len(h) for h in handled], kept_settled

    handled, sizes, kept_settled = asyncio.run(main())
    assert [m for h in handled for m in h] == [b"%d" % i for i in range(30)]
    assert sizes[0] > 4, "the first call took more than its batch of 4"
    assert kept_settled and not any(kept_settled), "what was settled is let go"


def test_what_a_failed_continuing_handler_took_goes_back_with_its_batch(
    nats_server: NatsServer,
) -> None:
    """Handed back at once (nak'ed, redelivered a second later), not left for the
    consumer's ack wait (30 s, three times what the test waits)."""

    async def main() -> tuple[list[bytes], int]:
        bus, js, name = await _stream(nats_server, "test-consume-more-fails", "MOREFAIL")
        for i in range(6):
            await js.publish(f"{name}.x", b"%d" % i)
        calls = [0]
        took_first = [0]
        delivered: list[bytes] = []

        async def handle(messages: list[Msg], more: Any) -> None:
            calls[0] += 1
            if calls[0] == 1:
                came = await _once_come(more)  # what was asked for ahead
                took_first[0] = len(messages) + len(came) + sum([len(b) async for b in _all(more)])
                raise RuntimeError("the provider fell over")
            for batch in [messages, *[b async for b in _all(more)]]:
                for msg in batch:
                    delivered.append(msg.data)
                    await msg.ack()

        stopping, loop = _consuming(
            bus, name, handle, continuing=True, batch=2, linger_s=0.01, read_ahead=True
        )
        await until_true(lambda: len(delivered) >= 6, timeout_s=10)
        stopping.set()
        await loop
        await js.delete_stream(name)
        await bus.close()
        return delivered, took_first[0]

    delivered, took_first = asyncio.run(main())
    assert took_first > 2, "the failed call took more than its batch of 2"
    assert sorted(delivered) == [b"%d" % i for i in range(6)]


def test_a_continuing_handlers_more_keeps_a_request_open_when_nothing_came(
    nats_server: NatsServer,
) -> None:
    """`more()` that took nothing asks ahead again: what is published after the
    request asked for ahead has expired still comes to a later `more()` of the
    same batch, not only to the next fetch."""

    async def main() -> list[bytes]:
        bus, js, name = await _stream(nats_server, "test-consume-more-open", "MOREOPEN")
        await js.publish(f"{name}.x", b"0")
        taken: list[bytes] = []

        async def handle(messages: list[Msg], more: Any) -> None:
            for msg in messages:
                await msg.ack()
            taken.extend(m.data for m in messages)
            if len(taken) > 1:
                return
            assert await more() == []
            # Ten times the request's expiry: the request asked for ahead is over.
            await asyncio.sleep(EXPIRY_S * 10)
            assert await more() == []
            await js.publish(f"{name}.x", b"1")
            for msg in await _once_come(more):
                await msg.ack()
                taken.append(msg.data + b" by more")

        stopping, loop = _consuming(
            bus, name, handle, continuing=True, batch=4, wait_s=EXPIRY_S, read_ahead=True
        )
        await until_true(lambda: len(taken) >= 2)
        stopping.set()
        await loop
        await js.delete_stream(name)
        await bus.close()
        return taken

    assert asyncio.run(main()) == [b"0", b"1 by more"]


async def _once_come(more: Any) -> list[Msg]:
    """`more()`, asked until what was asked for ahead has come."""
    came: list[list[Msg]] = []

    async def has_come() -> bool:
        came.append(await more())
        return bool(came[-1])

    await eventually(has_come)
    return came[-1]


async def _all(more: Any) -> Any:
    while batch := await more():
        yield batch
