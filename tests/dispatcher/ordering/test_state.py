"""The ordering state in NATS KV, in-process on a real nats-server, with each
replica's wall clock a virtual one: the lease is renewed, lapses and passes to a
standby at the times its TTL says; fences only move forward; erasure marks reach
every replica that follows them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import nats
from marketing_runtime import topology
from nats.js.kv import KeyValue

from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.ordering.fences import Fences
from dispatcher.ordering.lease import Lease
from tests.dispatcher.virtual_clock import VirtualClock
from tests.harness import eventually
from tests.processes import NatsServer

T = TypeVar("T")
TTL_S = 15.0
RENEW_EVERY_S = TTL_S / 5  # as the dispatcher's lease loop renews


@asynccontextmanager
async def _bucket(server: NatsServer, name: str) -> AsyncIterator[KeyValue]:
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        await topology.declare(js)
        yield await js.key_value(name)
    finally:
        await nc.close()


def _on_bucket(server: NatsServer, name: str, scenario: Callable[[KeyValue], Awaitable[T]]) -> T:
    async def main() -> T:
        async with _bucket(server, name) as kv:
            return await scenario(kv)

    return asyncio.run(main())


def _leases(kv: KeyValue, clock: VirtualClock) -> tuple[Lease, Lease]:
    """Two replicas' leases on one fresh key, both reading the virtual clock."""
    key = f"test-{uuid.uuid4().hex[:8]}"
    return (
        Lease(kv, key, "active", TTL_S, clock=clock.monotonic),
        Lease(kv, key, "standby", TTL_S, clock=clock.monotonic),
    )


def test_a_standby_takes_the_lease_once_it_lapsed_unrenewed(own_nats: NatsServer) -> None:
    clock = VirtualClock()

    async def scenario(kv: KeyValue) -> list[tuple[float, bool, bool]]:
        active, standby = _leases(kv, clock)
        assert await active.acquire_or_renew()
        seen = []
        for now in (1.0, TTL_S - 0.1, TTL_S + 0.1):  # the active replica stopped renewing
            clock.now = now
            seen.append((now, await standby.acquire_or_renew(), standby.held()))
        clock.now = TTL_S + 0.2
        assert not await active.acquire_or_renew(), "the standby holds it now"
        assert not active.held()
        return seen

    assert _on_bucket(own_nats, topology.LEASES_BUCKET, scenario) == [
        (1.0, False, False),
        (TTL_S - 0.1, False, False),
        (TTL_S + 0.1, True, True),
    ]


def test_a_lease_renewed_every_fifth_of_its_ttl_is_never_handed_over(
    own_nats: NatsServer,
) -> None:
    clock = VirtualClock()

    async def scenario(kv: KeyValue) -> None:
        active, standby = _leases(kv, clock)
        for step in range(int(10 * TTL_S / RENEW_EVERY_S)):
            clock.now = step * RENEW_EVERY_S
            assert await active.acquire_or_renew(), f"renewal refused at {clock.now} s"
            assert active.held()
            clock.now += RENEW_EVERY_S / 2
            assert not await standby.acquire_or_renew(), f"handed over at {clock.now} s"

    _on_bucket(own_nats, topology.LEASES_BUCKET, scenario)


def test_held_leaves_a_third_of_the_ttl_to_spare(own_nats: NatsServer) -> None:
    """A replica stops calling the provider while a third of its lease is left,
    so a standby that takes over at expiry never overlaps a call in flight."""
    clock = VirtualClock()

    async def scenario(kv: KeyValue) -> list[bool]:
        active, _ = _leases(kv, clock)
        assert await active.acquire_or_renew()
        held = []
        for now in (0.0, TTL_S * 2 / 3 - 0.1, TTL_S * 2 / 3 + 0.1, TTL_S - 0.1):
            clock.now = now
            held.append(active.held())
        return held

    assert _on_bucket(own_nats, topology.LEASES_BUCKET, scenario) == [True, True, False, False]


def test_a_released_lease_goes_to_the_standby_at_once(own_nats: NatsServer) -> None:
    clock = VirtualClock()

    async def scenario(kv: KeyValue) -> bool:
        active, standby = _leases(kv, clock)
        assert await active.acquire_or_renew()
        clock.now = 1.0
        assert not await standby.acquire_or_renew()
        await active.release()
        return await standby.acquire_or_renew()

    assert _on_bucket(own_nats, topology.LEASES_BUCKET, scenario)


def test_a_fence_only_moves_forward_whichever_replica_writes(own_nats: NatsServer) -> None:
    async def scenario(kv: KeyValue) -> tuple[int, int]:
        person = uuid.uuid4().hex
        one, other = Fences(kv), Fences(kv)  # two replicas, as after a failover
        before = await one.applied("consent", person)
        await one.advance("consent", person, 5)
        await other.advance("consent", person, 3)  # an older change, redelivered
        await asyncio.gather(*(other.advance("consent", person, s) for s in (4, 7, 6)))
        await one.advance("profile", person, 2)  # aspects are fenced apart
        return before, await other.applied("consent", person)

    assert _on_bucket(own_nats, topology.FENCES_BUCKET, scenario) == (0, 7)


def test_an_erasure_mark_reaches_a_replica_following_the_marks(own_nats: NatsServer) -> None:
    async def scenario(kv: KeyValue) -> None:
        person, other = uuid.uuid4().hex, uuid.uuid4().hex
        following = ErasureMarks(kv)
        watch = asyncio.create_task(following.follow())
        try:
            await ErasureMarks(kv).mark(person, 1000.0)  # another replica's worker

            async def seen() -> bool:
                return following.erased_since(person, 1000.0)

            await eventually(seen)
            assert following.erased_since(person, 999.0), "accepted before the erasure"
            assert not following.erased_since(person, 1000.5), "accepted after it"
            assert not following.erased_since(other, 0.0)
        finally:
            watch.cancel()

    _on_bucket(own_nats, topology.FENCES_BUCKET, scenario)
