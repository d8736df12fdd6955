"""The enrolments worker and a paused endpoint: in-process on a virtual clock, a real
nats-server and the Klaviyo sandbox over HTTP. It holds off fetching only while every
endpoint it calls is paused (a paused consent endpoint is none of its business), and a
batch whose bulk event job is throttled is kept alive (+WPI) until the Retry-After has
passed, then sent."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

from marketing_runtime import topology
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer
from nats.aio.msg import Msg

from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import keepalive_every
from dispatcher.providers.base import REQUEST_ERASURE
from dispatcher.providers.klaviyo.client import EVENTS_BULK, KlaviyoClient
from dispatcher.providers.klaviyo.enrolments import ENROLMENT_EVENTS
from dispatcher.sandbox import Sandbox
from tests.dispatcher.delivery.test_contacts_paused_endpoint import InFlight, throttle
from tests.dispatcher.delivery.test_enrolments import DELIVERED, Recording, change, person
from tests.dispatcher.helpers import ACK_WAIT_S, API_KEY, enrolments_worker, held_lease
from tests.dispatcher.virtual_clock import VirtualClock
from tests.harness import eventually
from tests.processes import NatsServer

RETRY_AFTER_S = 60.0


async def _on_bus(nats: NatsServer) -> Bus:
    bus = Bus(nats.url, name="test-enrolments-paused")
    bus.start()
    assert await bus.wait_ready(30)
    return bus


def test_fetching_is_held_off_only_while_every_enrolment_endpoint_is_paused(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    clock = VirtualClock()

    async def scenario() -> list[float]:
        bus = await _on_bus(own_nats)
        gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
        provider = KlaviyoClient(API_KEY, base_url=sandbox.base_url)
        lease = await held_lease(bus, ttl_s=1e6, clock=clock.monotonic)
        worker = await enrolments_worker(bus, provider, lease, clock=clock, gate=gate)
        limits = provider.limits
        try:
            for operation in (REQUEST_ERASURE, *limits.consent):
                await throttle(gate, operation, RETRY_AFTER_S)
            seen = [worker.pause_left()]  # consent and erasure endpoints only
            await throttle(gate, ENROLMENT_EVENTS, RETRY_AFTER_S)
            seen.append(worker.pause_left())  # single events and profile-imports still go
            for operation in limits.enrolments:
                if not gate.pause_left(operation):  # (a paused one's call would wait)
                    await throttle(gate, operation, RETRY_AFTER_S)
            return [*seen, worker.pause_left()]
        finally:
            await provider.aclose()
            await bus.close()

    assert asyncio.run(scenario()) == [0, 0, RETRY_AFTER_S]


def test_a_batch_waits_out_its_throttled_bulk_job_kept_alive_and_then_goes(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    sandbox.add_fault(path=EVENTS_BULK, status=429, retry_after=int(RETRY_AFTER_S), times=1)
    clock = VirtualClock()
    starts = [change(person(), str(uuid.uuid4()), 1, active=True) for _ in range(2)]
    kept_alive: Counter[int] = Counter()

    async def scenario() -> dict[str, Any]:
        bus = await _on_bus(own_nats)
        assert bus.js is not None and bus.nc is not None
        for start in starts:
            await bus.js.publish(topology.ENROLMENTS_SUBJECT, start.SerializeToString())
        puller = PullConsumer(
            bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_ENROLMENTS
        )
        batch = await puller.fetch(len(starts), wait_s=5, linger_s=5)  # returns once all are in
        assert len(batch) == len(starts)
        for msg in batch:
            _count_progress(msg, kept_alive)
        gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
        transport = InFlight()
        provider = KlaviyoClient(API_KEY, base_url=sandbox.base_url, transport=transport)
        lease = await held_lease(bus, ttl_s=1e6, clock=clock.monotonic)
        reporter = Recording(bus)
        worker = await enrolments_worker(
            bus, provider, lease, clock=clock, gate=gate, reporter=reporter, max_attempts=3
        )

        async def settle() -> None:
            await asyncio.sleep(0.01)
            await transport.idle()

        async def throttled() -> bool:
            return gate.pause_left(ENROLMENT_EVENTS) > 0

        try:
            handling = asyncio.create_task(worker.handle(batch))
            await eventually(throttled)
            throttled_at = clock.now
            # Until the job is accepted; what follows (fences, results, acks) is real I/O.
            await clock.advance_until(
                lambda: bool(sandbox.event_counts()), settle, limit_s=3 * RETRY_AFTER_S
            )
            sent_at = clock.now
            await asyncio.wait_for(handling, 30)
            await puller.close()
        finally:
            await provider.aclose()
            await bus.close()
        return {"waited": sent_at - throttled_at, "outcomes": reporter.outcomes}

    seen = asyncio.run(scenario())
    assert seen["waited"] >= RETRY_AFTER_S
    assert {seen["outcomes"][s.id].outcome for s in starts} == {DELIVERED}
    assert sandbox.event_counts() == {s.enrolment_changed.enrolment_id: 1 for s in starts}
    # +WPI each third of the ack wait while the Retry-After ran.
    every = RETRY_AFTER_S // keepalive_every(ACK_WAIT_S)
    assert len(kept_alive) == len(starts), kept_alive
    assert min(kept_alive.values()) >= every - 1, kept_alive


def _count_progress(msg: Msg, counts: Counter[int]) -> None:
    """Count the message's in-progress acks (+WPI) in `counts`, by its id()."""
    send = msg.in_progress

    async def in_progress() -> None:
        counts[id(msg)] += 1
        await send()

    msg.in_progress = in_progress  # type: ignore[method-assign]
