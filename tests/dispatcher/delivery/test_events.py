"""The events worker in-process, on a virtual clock: a real nats-server of its own,
the sandbox over HTTP, and JetStream's ack protocol observed on the wire
(every +ACK, -NAK and +WPI the worker sends for a message goes to its reply
subject, which a plain subscriber on `$JS.ACK.>` sees too)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import nats
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import parse_delivery
from marketing_runtime.pull import PullConsumer
from marketing_runtime.timestamps import to_timestamp
from nats.aio.msg import Msg

from dispatcher.delivery.events import EventsWorker
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import keepalive_every
from dispatcher.delivery.outcomes import Reporter
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.bus_helpers import delivery
from tests.dispatcher.helpers import API_KEY
from tests.dispatcher.virtual_clock import VirtualClock
from tests.harness import eventually
from tests.processes import NatsServer

ACK_WAIT_S = 30.0
RETRY_AFTER_S = 60  # twice the ack wait
Sent = tuple[float, bytes]  # (virtual time, ack payload)


def _event(event_id: str, *, with_body: bool = True) -> bytes:
    """A product view; without its body, one no release could send (unreadable)."""
    event = bus_pb2.EventTracked(
        event_id=event_id,
        email=f"{event_id}@example.com",
        metric="product_viewed",
        occur_time=to_timestamp(datetime(2026, 11, 2, 9, 30, tzinfo=UTC)),
    )
    if with_body:
        event.product_viewed.product.product_id = "p1"
    message = delivery(
        id=event_id,
        kind=bus_pb2.KIND_EVENT_TRACKED,
        contact_key=f"{event_id}@example.com",
        sequence=0,
        payload=event,
        created=datetime.now(UTC),
    )
    return message.SerializeToString()


class Wire:
    """What the worker told JetStream about each message, stamped with virtual time."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.sent: dict[str, list[Sent]] = defaultdict(list)

    async def record(self, msg: Msg) -> None:
        self.sent[msg.subject].append((self.clock.now, msg.data))

    def of(self, msg: Msg) -> list[Sent]:
        return self.sent[msg.reply]


def test_a_batch_waiting_out_a_long_retry_after_is_kept_alive_then_sent_once(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    # The first call is throttled for twice the ack wait; the next batch waits it out.
    sandbox.add_fault(path="/api/event", status=429, retry_after=RETRY_AFTER_S)
    clock = VirtualClock()
    wire = Wire(clock)
    first_ids = [f"first-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
    second_ids = [f"second-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
    unreadable = f"unreadable-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[Msg], list[Msg]]:
        bus = Bus(own_nats.url, name="test-events-worker")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        observer = await nats.connect(own_nats.url)
        await observer.subscribe("$JS.ACK.>", cb=wire.record)
        for event_id in [*first_ids, *second_ids]:
            await bus.js.publish(topology.EVENTS_SUBJECT, _event(event_id))
        await bus.js.publish(topology.EVENTS_SUBJECT, _event(unreadable, with_body=False))
        puller = PullConsumer(bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_EVENTS)
        first = await puller.fetch(3, wait_s=5, linger_s=1)
        second = await puller.fetch(4, wait_s=5, linger_s=1)
        nc = bus.nc

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)
            await nc.flush()
            await observer.flush()

        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url) as provider:
            gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
            worker = EventsWorker(
                provider,
                Reporter(bus, utc_now),
                gate,
                ErasureMarks(await bus.js.key_value(topology.FENCES_BUCKET)),
                connection_ended=bus.connection_ended,
                max_attempts=7,
                backoff_base_s=1.0,
                keepalive_s=lambda: keepalive_every(ACK_WAIT_S),
                sleep=clock.sleep,
            )
            await worker.handle(first)  # throttled: handed back with the Retry-After
            assert worker.pause_left() == RETRY_AFTER_S
            handling = asyncio.create_task(worker.handle(second))
            # Dead-lettered before any wait: let that finish (a real round trip)
            # before virtual time moves, however slow the machine is.
            (bad,) = [msg for msg in second if _id(msg) == unreadable]
            await eventually(lambda: _acked(wire, bad))
            await clock.advance_until(handling.done, settle, limit_s=10 * RETRY_AFTER_S)
            await handling
        await settle()
        await puller.close()
        await observer.close()
        await bus.close()
        return first, second

    first, second = asyncio.run(scenario())

    for msg in first:  # nak'ed with the provider's delay, and never touched again
        (nak,) = wire.of(msg)
        assert nak[1].startswith(b"-NAK")
        assert json.loads(nak[1][len(b"-NAK") :])["delay"] == RETRY_AFTER_S * 10**9
    held = [msg for msg in second if _id(msg) != unreadable]
    (bad,) = [msg for msg in second if _id(msg) == unreadable]
    assert wire.of(bad) == [(0.0, b"+ACK")], "dead-lettered at once, then left alone"
    for msg in held:
        sent = wire.of(msg)
        assert sent[-1][1] == b"+ACK" and sent[-1][0] >= RETRY_AFTER_S
        assert all(payload == b"+WPI" for _, payload in sent[:-1])
        times = [0.0] + [when for when, _ in sent]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert max(gaps) <= keepalive_every(ACK_WAIT_S), "held past a third of the ack wait"
    counts = sandbox.event_counts()
    assert {i: counts.get(i, 0) for i in [*first_ids, *second_ids]} == {
        **dict.fromkeys(first_ids, 0),
        **dict.fromkeys(second_ids, 1),
    }


async def _acked(wire: Wire, msg: Msg) -> bool:
    return bool(wire.of(msg))


def _id(msg: Msg) -> str:
    return parse_delivery(msg.data).id


def test_a_batch_waiting_out_a_retry_after_is_not_sent_once_its_connection_ended(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """Its acks can no longer reach JetStream, which hands it to another replica:
    sent after the wait, every event would go out twice."""
    sandbox.add_fault(path="/api/event", status=429, retry_after=RETRY_AFTER_S)
    clock = VirtualClock()
    first_ids = [f"first-{uuid.uuid4().hex[:8]}-{i}" for i in range(2)]
    second_ids = [f"second-{uuid.uuid4().hex[:8]}-{i}" for i in range(2)]

    async def scenario() -> None:
        bus = Bus(own_nats.url, name="test-events-worker")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        for event_id in [*first_ids, *second_ids]:
            await bus.js.publish(topology.EVENTS_SUBJECT, _event(event_id))
        puller = PullConsumer(bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_EVENTS)
        first = await puller.fetch(2, wait_s=5, linger_s=1)
        second = await puller.fetch(2, wait_s=5, linger_s=1)
        nc, ended = bus.nc, bus.connection_ended()

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)

        provider = KlaviyoClient(API_KEY, base_url=sandbox.base_url)
        worker = EventsWorker(
            provider,
            Reporter(bus, utc_now),
            ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep),
            ErasureMarks(await bus.js.key_value(topology.FENCES_BUCKET)),
            connection_ended=bus.connection_ended,
            max_attempts=7,
            backoff_base_s=1.0,
            keepalive_s=lambda: keepalive_every(ACK_WAIT_S),
            sleep=clock.sleep,
        )
        try:
            await worker.handle(first)  # throttled: the gate pauses the events endpoint
            handling = asyncio.create_task(worker.handle(second))
            await settle()
            await nc.close()  # for good, as after `maximum payload exceeded`
            await asyncio.wait_for(ended.wait(), 10)
            await clock.advance_until(handling.done, settle, limit_s=10 * RETRY_AFTER_S)
            await handling
        finally:
            await provider.aclose()
            # Closed while it reconnects, the Bus can hang (nats-py swallows the cancel).
            assert await bus.wait_ready(30)
            await bus.close()

    asyncio.run(scenario())

    assert len(sandbox.rejections()) == 1, "the first batch was throttled"
    counts = sandbox.event_counts()
    assert [counts.get(i, 0) for i in [*first_ids, *second_ids]] == [0, 0, 0, 0]
