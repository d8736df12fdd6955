"""The contacts worker in-process on a virtual clock (a real nats-server, the
sandbox over HTTP, acks observed on the wire): a batch retried in place is kept
alive, and nothing is sent once the lease or the NATS connection is lost; the
batch is handed back, and nothing touches a message after its nak."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import nats
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer
from nats.aio.msg import Msg

from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import keepalive_every
from dispatcher.providers.base import Profile
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.bus_helpers import delivery
from tests.dispatcher.helpers import ACK_WAIT_S, API_KEY, contacts_worker, held_lease
from tests.dispatcher.virtual_clock import VirtualClock
from tests.harness import eventually
from tests.processes import NatsServer

RETRY_AFTER_S = 60.0  # twice the ack wait
PROFILES = "/api/profile-import"


def _upsert(email: str, sequence: int) -> bytes:
    return delivery(
        id=str(uuid.uuid4()),
        kind=bus_pb2.KIND_CONTACT_UPSERTED,
        contact_key=uuid.uuid5(uuid.NAMESPACE_URL, email).hex,  # a valid KV key, as the service's
        sequence=sequence,
        payload=bus_pb2.ContactUpserted(email=email, first_name="Ada"),
        created=datetime.now(UTC),
    ).SerializeToString()


def _run(
    own_nats: NatsServer, sandbox: Sandbox, *, lease_ttl_s: float, close: bool
) -> list[list[tuple[float, bytes]]]:
    """One profile change, throttled once for RETRY_AFTER_S; while the worker
    waits, the lease lapses (virtual time runs past its TTL) or the connection
    closes for good. What the worker told JetStream about the message, stamped."""
    sandbox.add_fault(path=PROFILES, status=429, retry_after=int(RETRY_AFTER_S))
    clock = VirtualClock()
    sent: dict[str, list[tuple[float, bytes]]] = defaultdict(list)
    base = time.time()

    async def scenario() -> list[Msg]:
        bus = Bus(own_nats.url, name="test-contacts-worker")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        observer = await nats.connect(own_nats.url)

        async def record(msg: Msg) -> None:
            sent[msg.subject].append((clock.now, msg.data))

        await observer.subscribe("$JS.ACK.>", cb=record)
        email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
        await bus.js.publish(topology.CONTACTS_SUBJECT, _upsert(email, 1))
        puller = PullConsumer(
            bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_CONTACTS
        )
        batch = await puller.fetch(1, wait_s=5, linger_s=0)
        nc, ended = bus.nc, bus.connection_ended()
        # The lease lapses in virtual time.
        lease = await held_lease(bus, ttl_s=lease_ttl_s, clock=lambda: base + clock.now)
        gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
        provider = KlaviyoClient(API_KEY, base_url=sandbox.base_url)
        worker = await contacts_worker(bus, provider, lease, clock=clock, gate=gate, max_attempts=7)

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)
            if not nc.is_closed:
                await nc.flush()
            await observer.flush()

        async def throttled() -> bool:
            return gate.pause_left("upsert_profile") > 0

        try:
            handling = asyncio.create_task(worker.handle(batch))
            await eventually(throttled)
            if close:
                await nc.close()
                await asyncio.wait_for(ended.wait(), 10)
            await clock.advance_until(handling.done, settle, limit_s=10 * RETRY_AFTER_S)
            await handling
            await settle()
        finally:
            await provider.aclose()
            await observer.close()
            assert await bus.wait_ready(30)  # closed while reconnecting, a Bus can hang
            await bus.close()
        return batch

    batch = asyncio.run(scenario())
    return [sent[msg.reply] for msg in batch]


def test_a_batch_whose_lease_lapsed_during_a_retry_after_is_handed_back_unsent(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    (wire,) = _run(own_nats, sandbox, lease_ttl_s=ACK_WAIT_S, close=False)

    assert sandbox.requests(PROFILES) == [], "sent without the lease"
    assert [status for _, status in wire[:-1]] == [b"+WPI"] * (len(wire) - 1)
    assert wire[-1][1] == b"-NAK", "handed back, and nothing after the nak"
    times = [0.0] + [when for when, _ in wire]
    assert max(later - earlier for earlier, later in itertools.pairwise(times)) <= (
        keepalive_every(ACK_WAIT_S)
    ), "kept alive while it waited"


def test_a_batch_whose_connection_ended_during_a_retry_after_is_not_sent(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    _run(own_nats, sandbox, lease_ttl_s=100 * RETRY_AFTER_S, close=True)

    assert len(sandbox.rejections()) == 1, "throttled once"
    assert sandbox.requests(PROFILES) == [], "sent after its connection ended"


class TimedClient(KlaviyoClient):
    """The real client, noting the virtual time of each profile upsert it sends."""

    def __init__(self, clock: VirtualClock, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.upserts_at: list[float] = []
        self._virtual = clock

    async def upsert_profile(self, profile: Profile) -> str:
        self.upserts_at.append(self._virtual.now)
        return await super().upsert_profile(profile)


def _upserts_at(own_nats: NatsServer, sandbox: Sandbox, *, backoff_base_s: float) -> list[float]:
    """One profile change through the worker, with the lease held throughout:
    the virtual times at which the worker sent it, and that it was acked."""
    clock = VirtualClock()

    async def scenario() -> list[float]:
        bus = Bus(own_nats.url, name="test-contacts-retry")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
        await bus.js.publish(topology.CONTACTS_SUBJECT, _upsert(email, 1))
        puller = PullConsumer(
            bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_CONTACTS
        )
        (msg,) = await puller.fetch(1, wait_s=5, linger_s=0)
        lease = await held_lease(bus, ttl_s=1e6, clock=clock.monotonic)
        provider = TimedClient(clock, API_KEY, base_url=sandbox.base_url)
        worker = await contacts_worker(
            bus, provider, lease, clock=clock, max_attempts=7, backoff_base_s=backoff_base_s
        )

        async def waiting_or_done() -> bool:
            # One sleeper is the keepalive's; a second is the worker's own wait.
            return handling.done() or clock.sleepers() >= 2

        async def settle() -> None:
            await eventually(waiting_or_done)

        try:
            handling = asyncio.create_task(worker.handle([msg]))
            await clock.advance_until(handling.done, settle, limit_s=1000)
            await handling
            await puller.close()
        finally:
            await provider.aclose()
            await bus.close()
        return provider.upserts_at

    times = asyncio.run(scenario())
    assert len(sandbox.requests(PROFILES)) == 1, "delivered once"
    return times


def test_a_failed_call_is_retried_when_the_backoff_says(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """Twice a server error without Retry-After: retried after 2 s, then 4 s more."""
    sandbox.add_fault(path=PROFILES, status=503, times=2)

    assert _upserts_at(own_nats, sandbox, backoff_base_s=2.0) == [0.0, 2.0, 6.0]


def test_a_429_pauses_the_worker_until_its_retry_after_and_no_longer(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    sandbox.add_fault(path=PROFILES, status=429, retry_after=int(RETRY_AFTER_S))

    assert _upserts_at(own_nats, sandbox, backoff_base_s=1.0) == [0.0, RETRY_AFTER_S]
