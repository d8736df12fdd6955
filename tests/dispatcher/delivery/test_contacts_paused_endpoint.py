"""One paused endpoint does not hold up ordered work on the others (issue 13 §2): the
contacts worker in-process on a virtual clock, a real nats-server and the sandbox over
HTTP. Klaviyo's erasure endpoint answers 429 with a minute's Retry-After; an
unsubscribe of someone else, in the same batch and after the erasure, still goes at
once, and the worker keeps fetching."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import httpx
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer

from dispatcher.delivery.gate import ProviderGate
from dispatcher.providers.base import (
    DELETE_PUSH_TOKEN,
    FIND_LIST,
    REGISTER_PUSH_TOKEN,
    REQUEST_ERASURE,
    UPSERT_PROFILE,
)
from dispatcher.providers.errors import RetryableProviderError
from dispatcher.providers.klaviyo.client import ERASE, SUPPRESS, UNSUBSCRIBE, KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.dispatcher.budget.provider_site import contact_work
from tests.dispatcher.helpers import API_KEY, contacts_worker, held_lease
from tests.dispatcher.virtual_clock import VirtualClock
from tests.harness import eventually
from tests.processes import NatsServer

RETRY_AFTER_S = 60.0
PROFILES = "/api/profile-import"


def test_a_paused_erasure_holds_up_neither_an_unsubscribe_nor_fetching(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    sandbox.add_fault(path=ERASE, status=429, retry_after=int(RETRY_AFTER_S), times=1)
    clock = VirtualClock()
    seen: dict[str, float] = {}

    def unsubscribe_arrived() -> bool:
        if "unsubscribe" not in seen and sandbox.requests(UNSUBSCRIBE) + sandbox.requests(SUPPRESS):
            seen["unsubscribe"] = clock.now
        return "unsubscribe" in seen

    async def scenario() -> None:
        bus = Bus(own_nats.url, name="test-contacts-paused")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        tag = uuid.uuid4().hex[:8]
        await bus.js.publish(
            topology.CONTACTS_SUBJECT, contact_work("erase", f"gone-{tag}@example.com", 1)
        )
        await bus.js.publish(
            topology.CONTACTS_SUBJECT, contact_work("unsubscribe", f"ada-{tag}@example.com", 2)
        )
        puller = PullConsumer(
            bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_CONTACTS
        )
        # A linger, so the second message is not left behind when the first one
        # arrives alone; the fetch returns as soon as both are in.
        batch = await puller.fetch(2, wait_s=5, linger_s=5)
        assert len(batch) == 2
        lease = await held_lease(bus, ttl_s=1e6, clock=clock.monotonic)
        gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
        transport = InFlight()
        provider = KlaviyoClient(API_KEY, base_url=sandbox.base_url, transport=transport)
        worker = await contacts_worker(bus, provider, lease, clock=clock, gate=gate, max_attempts=3)

        async def erasure_paused() -> bool:
            return gate.pause_left(REQUEST_ERASURE) > 0

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)
            await bus.nc.flush()  # type: ignore[union-attr]
            # Virtual time stands still while a request is out: on a loaded machine
            # the keepalive's wakes would otherwise run it past the limit meanwhile.
            await transport.idle()

        try:
            handling = asyncio.create_task(worker.handle(batch))
            await eventually(erasure_paused)
            assert worker.pause_left() == 0, "one paused endpoint stopped fetching"
            await clock.advance_until(unsubscribe_arrived, settle, limit_s=RETRY_AFTER_S / 2)
            await clock.advance_until(handling.done, settle, limit_s=3 * RETRY_AFTER_S)
            await handling
            await puller.close()
        finally:
            await provider.aclose()
            await bus.close()

    asyncio.run(scenario())
    assert seen["unsubscribe"] < RETRY_AFTER_S, "the unsubscribe waited for the erasure"
    assert len(sandbox.requests(ERASE)) == 1, "the erasure went once its Retry-After passed"


def test_fetching_is_held_off_only_while_every_endpoint_is_paused(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    clock = VirtualClock()

    async def scenario() -> tuple[float, float]:
        bus = Bus(own_nats.url, name="test-contacts-hold-off")
        bus.start()
        assert await bus.wait_ready(30)
        lease = await held_lease(bus, ttl_s=1e6, clock=clock.monotonic)
        gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
        provider = KlaviyoClient(API_KEY, base_url=sandbox.base_url)
        worker = await contacts_worker(bus, provider, lease, clock=clock, gate=gate)
        # The others the worker calls.
        limits = provider.limits
        operations = [UPSERT_PROFILE, FIND_LIST, *limits.consent, *limits.lists]
        operations += [*limits.enrolments, REGISTER_PUSH_TOKEN, DELETE_PUSH_TOKEN]
        try:
            await throttle(gate, REQUEST_ERASURE, RETRY_AFTER_S)
            one_paused = worker.pause_left()
            for operation in operations:
                await throttle(gate, operation, RETRY_AFTER_S)
            return one_paused, worker.pause_left()
        finally:
            await provider.aclose()
            await bus.close()

    one_paused, all_paused = asyncio.run(scenario())
    assert one_paused == 0
    assert all_paused == RETRY_AFTER_S


class InFlight(httpx.AsyncHTTPTransport):
    """A transport that knows whether a request is out."""

    def __init__(self) -> None:
        super().__init__()
        self._out = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._out += 1
        self._idle.clear()
        try:
            return await super().handle_async_request(request)
        finally:
            self._out -= 1
            if not self._out:
                self._idle.set()

    async def idle(self) -> None:
        await self._idle.wait()


async def throttle(gate: ProviderGate, operation: str, retry_after_s: float) -> None:
    """A 429 with this Retry-After on one endpoint, as the gate sees one."""

    async def refused() -> None:
        raise RetryableProviderError("throttled", retry_after=retry_after_s, status=429)

    with contextlib.suppress(RetryableProviderError):
        await gate.call(operation, 1, refused)


def test_a_person_s_work_keeps_its_order_around_their_erasure(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    """Erased, then re-created: the re-creation goes after the erasure; another
    person's later unsubscribe need not wait for it."""
    clock = VirtualClock()
    tag = uuid.uuid4().hex[:8]
    gone, ada = f"gone-{tag}@example.com", f"ada-{tag}@example.com"
    work = [("erase", gone), ("upsert", gone), ("unsubscribe", ada)]

    async def scenario() -> None:
        bus = Bus(own_nats.url, name="test-contacts-erasure-order")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        for sequence, (kind, email) in enumerate(work, start=1):
            await bus.js.publish(topology.CONTACTS_SUBJECT, contact_work(kind, email, sequence))
        puller = PullConsumer(
            bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_CONTACTS
        )
        batch = await puller.fetch(len(work), wait_s=5, linger_s=5)  # returns once all are in
        assert len(batch) == len(work)
        lease = await held_lease(bus, ttl_s=1e6, clock=clock.monotonic)
        provider = KlaviyoClient(API_KEY, base_url=sandbox.base_url)
        worker = await contacts_worker(bus, provider, lease, clock=clock)
        try:
            await worker.handle(batch)
            await puller.close()
        finally:
            await provider.aclose()
            await bus.close()

    asyncio.run(scenario())
    paths = [r["path"] for r in sandbox.requests() if r["path"] != "/api/profiles"]
    gone_calls = [p for p in paths if p in (PROFILES, ERASE)]
    assert gone_calls == [ERASE, PROFILES]
    assert paths.index(UNSUBSCRIBE) < paths.index(ERASE), "the unsubscribe waited"
