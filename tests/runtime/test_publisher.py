"""The batch publisher against a real nats-server: acks in order, JetStream's
dedupe by message id, refusals, and concurrent callers sharing a write.
(It frames HPUB commands itself through two private nats-py calls; these
tests fail loudly if a nats-py upgrade changes them.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from marketing_runtime.envelope import MSG_ID_HEADER
from marketing_runtime.publisher import Ack, BatchPublisher
from nats.js.api import StreamConfig

from tests.processes import SMALL_MAX_PAYLOAD, NatsServer

Scenario = Callable[[Any, BatchPublisher, str], Awaitable[None]]


def _run(nats_server: NatsServer, scenario: Scenario, **publisher_options: Any) -> None:
    async def main() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        name = f"PUB_{uuid.uuid4().hex[:8]}"
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.x"]))
        publisher = BatchPublisher(nc, **publisher_options)
        try:
            await scenario(js, publisher, name)
        finally:
            await js.delete_stream(name)
            await nc.close()

    asyncio.run(main())


def test_batch_is_stored_in_order_with_ids_and_payloads(nats_server: NatsServer) -> None:
    async def scenario(js: Any, publisher: BatchPublisher, name: str) -> None:
        messages = [(f"id-{i}", f"payload {i}".encode()) for i in range(300)]
        acks = await publisher.publish(f"{name}.x", messages, timeout_s=5)
        assert acks == [Ack(duplicate=False)] * 300
        for seq in (1, 150, 300):
            stored = await js.get_msg(name, seq)
            assert stored.data == messages[seq - 1][1]
            assert stored.headers[MSG_ID_HEADER] == messages[seq - 1][0]

    _run(nats_server, scenario)


def test_a_repeated_id_is_acknowledged_as_duplicate(nats_server: NatsServer) -> None:
    async def scenario(js: Any, publisher: BatchPublisher, name: str) -> None:
        first = await publisher.publish(f"{name}.x", [("a", b"1"), ("a", b"1")], timeout_s=5)
        again = await publisher.publish(f"{name}.x", [("a", b"1"), ("b", b"2")], timeout_s=5)
        assert first == [Ack(duplicate=False), Ack(duplicate=True)]
        assert again == [Ack(duplicate=True), Ack(duplicate=False)]
        assert (await js.stream_info(name)).state.messages == 2

    _run(nats_server, scenario)


def test_a_subject_no_stream_takes_gets_no_ack(nats_server: NatsServer) -> None:
    async def scenario(js: Any, publisher: BatchPublisher, name: str) -> None:
        acks = await publisher.publish(f"{name}-nowhere.x", [("a", b"1")], timeout_s=5)
        assert acks == [None]

    _run(nats_server, scenario)


def test_acks_not_in_by_the_timeout_are_none_and_a_late_ack_is_ignored(
    nats_server: NatsServer,
) -> None:
    async def scenario(js: Any, publisher: BatchPublisher, name: str) -> None:
        # A plain subscriber holds on to the replies: the first message's ack
        # comes only after the publication stopped waiting.
        held: asyncio.Queue[Any] = asyncio.Queue()
        nc = publisher._nc  # the same connection
        replier = await nc.subscribe(f"{name}-slow.x", cb=held.put)
        acks = await publisher.publish(f"{name}-slow.x", [("a", b"1")], timeout_s=0.2)
        assert acks == [None]
        unanswered = await held.get()  # its callback may have run after the timeout
        await nc.publish(unanswered.reply, b'{"stream":"S","seq":1}')  # late
        await nc.flush()
        assert await publisher.publish(f"{name}.x", [("b", b"2")], timeout_s=5) == [
            Ack(duplicate=False)
        ]
        await replier.unsubscribe()

    _run(nats_server, scenario)


def test_concurrent_callers_each_get_their_own_acks(nats_server: NatsServer) -> None:
    async def scenario(js: Any, publisher: BatchPublisher, name: str) -> None:
        async def caller(n: int) -> list[Ack | None]:
            # Every third caller repeats an id of the caller before it.
            msg_id = f"c-{n - 1}" if n % 3 == 2 else f"c-{n}"
            return await publisher.publish(f"{name}.x", [(msg_id, b"x")], timeout_s=5)

        results = await asyncio.gather(*(caller(n) for n in range(60)))
        duplicates = [n for n, acks in enumerate(results) if acks[0] and acks[0].duplicate]
        assert all(acks[0] is not None for acks in results)
        assert duplicates == [n for n in range(60) if n % 3 == 2]
        assert (await js.stream_info(name)).state.messages == 40

    _run(nats_server, scenario)


def test_a_cancelled_caller_does_not_drop_the_frames_of_the_others(
    nats_server: NatsServer,
) -> None:
    async def scenario(js: Any, publisher: BatchPublisher, name: str) -> None:
        # Keep a publication in flight so that the next ones linger for a group commit.
        slow = asyncio.create_task(publisher.publish(f"{name}-nowhere.x", [("s", b"")], 2))
        await asyncio.sleep(0.05)
        first = asyncio.create_task(publisher.publish(f"{name}.x", [("first", b"1")], 5))
        second = asyncio.create_task(publisher.publish(f"{name}.x", [("second", b"2")], 5))
        await asyncio.sleep(0)  # both have queued their frames; the first is the writer
        first.cancel()
        assert await second == [Ack(duplicate=False)]
        assert (await js.stream_info(name)).state.messages == 2
        await slow

    _run(nats_server, scenario)


def test_a_message_over_max_payload_is_not_sent_and_the_connection_stays(
    small_nats: NatsServer,
) -> None:
    async def scenario(js: Any, publisher: BatchPublisher, name: str) -> None:
        header = len(f"NATS/1.0\r\n{MSG_ID_HEADER}: fits\r\n\r\n")  # "over" is as long
        exact = b"x" * (SMALL_MAX_PAYLOAD - header)
        messages = [("fits", exact), ("over", exact + b"x"), ("after", b"small")]
        acks = await publisher.publish(f"{name}.x", messages, timeout_s=5)
        assert acks == [Ack(duplicate=False), None, Ack(duplicate=False)]
        assert publisher._nc.is_connected
        assert (await js.stream_info(name)).state.messages == 2
        (alone,) = await publisher.publish(f"{name}.x", [("over", exact + b"x")], timeout_s=5)
        assert alone is None and publisher._nc.is_connected

    _run(small_nats, scenario)
