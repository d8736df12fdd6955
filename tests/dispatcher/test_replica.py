"""Two dispatcher replicas (`dispatcher.main.Dispatcher`) in one event loop, on a
real nats-server and the sandbox over HTTP, every wait of theirs on one virtual
clock: the lease and its hand-over, shutdown with its grace period, and events
shared by both. Each replica's provider calls go through a transport of its own
that notes them (stamped with virtual time) and can hold one in flight."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.timestamps import to_timestamp
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from dispatcher.main import Dispatcher
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from dispatcher.settings import DispatcherSettings
from tests.bus_helpers import delivery
from tests.dispatcher.helpers import API_KEY
from tests.dispatcher.virtual_clock import VirtualClock
from tests.harness import eventually
from tests.processes import NatsServer

TTL_S = 15.0
GRACE_S = 30.0
# Virtual time jumps from one sleeper's deadline to the next (the lease keeper's,
# each TTL_S / 5) while real I/O is in flight: a budget reservation may age that
# much before its call goes. A margin wider than twice that keeps the budget
# from taking them again and again (tests/dispatcher/budget/ check the budget).
BUDGET_MARGIN_S = 8.0
PROFILES = "/api/profile-import"
LEASE_KEY = topology.CONTACTS_LEASE  # the lease of contact work
EVENTS = "/api/event"  # one event or a bulk job


class Hold:
    """Holds the first provider call to a path (of any replica) until released;
    with no path, none."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.by = ""  # the replica whose call is held
        self.held = asyncio.Event()
        self.released = asyncio.Event()

    async def pass_through(self, replica: str, path: str) -> None:
        if self.path and path.startswith(self.path) and not self.by:
            self.by = replica
            self.held.set()
            await self.released.wait()


class Noted(httpx.AsyncHTTPTransport):
    """A real HTTP transport that notes (virtual time, path) of each call it starts."""

    def __init__(self, replica: str, clock: VirtualClock, hold: Hold) -> None:
        super().__init__()
        self.replica, self.clock, self.hold = replica, clock, hold
        self.calls: list[tuple[float, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((self.clock.now, request.url.path))
        await self.hold.pass_through(self.replica, request.url.path)
        return await super().handle_async_request(request)

    def to(self, prefix: str) -> list[float]:
        return [when for when, path in self.calls if path.startswith(prefix)]


class Site:
    """What the replicas of a test share: NATS, the provider, the virtual clock
    (the monotonic one, and a wall clock starting now) and a call to hold."""

    def __init__(self, nats_url: str, sandbox: Sandbox, *, hold: str = "") -> None:
        self.nats_url, self.sandbox = nats_url, sandbox
        self.clock = VirtualClock()
        self.hold = Hold(hold)
        self.started = datetime.now(UTC)

    def wall(self) -> datetime:
        return self.started + timedelta(seconds=self.clock.now)

    def replica(self, **settings: Any) -> Replica:
        return Replica(self, **settings)


class Replica:
    """One Dispatcher on the virtual clock, serving (as `marketing-dispatcher` does)."""

    def __init__(self, site: Site, **settings: Any) -> None:
        config = DispatcherSettings(
            nats_url=site.nats_url,
            sandbox_url=site.sandbox.base_url,
            metrics_address="",
            linger_s=0.05,
            lease_ttl_s=TTL_S,
            shutdown_grace_s=GRACE_S,
            event_concurrency=1,
            budget_margin_s=BUDGET_MARGIN_S,
            **settings,
        )
        self.transport = Noted("", site.clock, site.hold)
        self.dispatcher = Dispatcher(
            config,
            KlaviyoClient(API_KEY, base_url=site.sandbox.base_url, transport=self.transport),
            sleep=site.clock.sleep,
            monotonic=site.clock.monotonic,
            clock=site.wall,
        )
        self.name = self.transport.replica = self.dispatcher.replica
        self.serving: asyncio.Task[int] | None = None
        self.running: asyncio.Task[None] | None = None

    def serve(self) -> Replica:
        self.serving = asyncio.create_task(self.dispatcher.serve())
        return self

    def run(self) -> Replica:
        """Run without the shutdown path, to be crashed."""
        self.running = asyncio.create_task(self.dispatcher.run())
        return self

    async def crash(self) -> None:
        """Gone without a word: its lease is not released, just no longer renewed."""
        assert self.running is not None
        self.running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.running
        await self.dispatcher.provider.aclose()
        await self.dispatcher.bus.close()

    async def served(self) -> int:
        """The exit code of `serve()`, once it returned (by itself)."""
        assert self.serving is not None
        return await asyncio.wait_for(self.serving, 30)

    async def stop(self) -> int:
        self.dispatcher.shutdown()
        return await self.served()


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A nats-server of each test's own: no work left over from another test."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server.url
    server.stop()


@asynccontextmanager
async def _bus(url: str) -> AsyncIterator[JetStreamContext]:
    """The test's own connection: publishes work, reads the lease and the consumers."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await topology.declare(js)
        yield js
    finally:
        await nc.close()


def _run(nats_url: str, scenario: Callable[[JetStreamContext], Awaitable[None]]) -> None:
    async def main() -> None:
        async with _bus(nats_url) as js:
            await scenario(js)

    asyncio.run(main())


async def _settle() -> None:
    """Between two virtual wake-ups, a little real time for the I/O they start
    (what the tests assert is waited for with `eventually`)."""
    await asyncio.sleep(0.01)


def _upsert(email: str) -> bytes:
    return delivery(
        id=str(uuid.uuid4()),
        kind=bus_pb2.KIND_CONTACT_UPSERTED,
        contact_key=uuid.uuid5(uuid.NAMESPACE_URL, email).hex,
        sequence=1,
        payload=bus_pb2.ContactUpserted(
            contact_id=str(uuid.uuid5(uuid.NAMESPACE_URL, email)), email=email, first_name="Ada"
        ),
        created=datetime.now(UTC),
    ).SerializeToString()


def _event(event_id: str) -> bytes:
    return delivery(
        id=event_id,
        kind=bus_pb2.KIND_EVENT_TRACKED,
        contact_key=uuid.uuid5(uuid.NAMESPACE_URL, event_id).hex,
        sequence=0,
        payload=bus_pb2.EventTracked(
            event_id=event_id,
            email=f"{event_id}@example.com",
            metric="product_viewed",
            occur_time=to_timestamp(datetime(2026, 11, 2, 9, 30, tzinfo=UTC)),
            product_viewed=bus_pb2.ProductViewed(product=bus_pb2.Product(product_id="p1")),
        ),
        created=datetime.now(UTC),
    ).SerializeToString()


def _imported(sandbox: Sandbox) -> Counter[str]:
    """Profile imports the provider accepted, per email."""
    return Counter(r["body"]["data"]["attributes"]["email"] for r in sandbox.requests(PROFILES))


async def _lease_owner(js: JetStreamContext) -> str:
    try:
        entry = await (await js.key_value(topology.LEASES_BUCKET)).get(LEASE_KEY)
    except KeyNotFoundError:  # nobody took it yet, or it was released
        return ""
    return str(json.loads(entry.value or b"{}").get("owner", ""))


async def _lease_expiry(js: JetStreamContext) -> float:
    """When the lease lapses unless renewed (wall clock, seconds since the epoch)."""
    entry = await (await js.key_value(topology.LEASES_BUCKET)).get(LEASE_KEY)
    return float(json.loads(entry.value or b"{}")["expires"])


async def _all_acked(js: JetStreamContext, durable: str) -> bool:
    info = await js.consumer_info(topology.WORK_STREAM, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


def test_only_the_lease_holder_applies_contact_work_and_a_standby_takes_over_after_the_ttl(
    nats_url: str, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="marketing.dispatcher")
    site = Site(nats_url, sandbox)
    first = [f"first-{uuid.uuid4().hex[:8]}@example.com" for _ in range(3)]
    later = [f"later-{uuid.uuid4().hex[:8]}@example.com" for _ in range(3)]

    async def scenario(js: JetStreamContext) -> None:
        taken: list[tuple[str, float]] = []  # (owner, virtual time) of every lease write
        observer = await nats.connect(nats_url)

        async def written(msg: Msg) -> None:
            if msg.data:  # not a release
                value = json.loads(msg.data)
                taken.append((value["owner"], value["expires"] - TTL_S - site.started.timestamp()))

        await observer.subscribe(f"$KV.{topology.LEASES_BUCKET}.{LEASE_KEY}", cb=written)
        holder = site.replica().run()

        async def holder_holds() -> bool:
            return await _lease_owner(js) == holder.name

        await eventually(holder_holds)
        standby = site.replica().serve()
        for email in first:
            await js.publish(topology.CONTACTS_SUBJECT, _upsert(email))
        # Two TTLs of virtual time: the holder keeps renewing, the standby stands by.
        await site.clock.advance_until(
            lambda: site.clock.now >= 2 * TTL_S and len(holder.transport.to(PROFILES)) == 3,
            _settle,
            limit_s=3 * TTL_S,
        )
        await eventually(lambda: _all_acked(js, topology.DISPATCH_CONTACTS))
        assert _imported(sandbox) == Counter(first)
        assert standby.transport.to(PROFILES) == [], "the standby applied ordered work"
        assert await _lease_owner(js) == holder.name

        await holder.crash()  # its lease stays written until it lapses
        lapses_at = await _lease_expiry(js) - site.started.timestamp()
        for email in later:
            await js.publish(topology.CONTACTS_SUBJECT, _upsert(email))
        await site.clock.advance_until(
            lambda: len(standby.transport.to(PROFILES)) == 3, _settle, limit_s=lapses_at + TTL_S
        )
        await eventually(lambda: _all_acked(js, topology.DISPATCH_CONTACTS))
        await observer.flush()
        owners = [owner for owner, _ in taken]
        assert set(owners[: owners.index(standby.name)]) == {holder.name}
        taken_over_at = taken[owners.index(standby.name)][1]
        # The standby tries every fifth of the TTL.
        assert lapses_at <= taken_over_at <= lapses_at + TTL_S / 5 + 0.01, (lapses_at, taken)
        assert min(standby.transport.to(PROFILES)) >= taken_over_at
        assert await _lease_owner(js) == standby.name
        assert _imported(sandbox) == Counter(first + later), "lost or applied twice"
        assert await standby.stop() == 0
        await observer.close()
        # Who holds the lease is logged as it changes hands.
        said = [r.getMessage() for r in caplog.records if LEASE_KEY in r.getMessage()]
        assert said[0] == f"dispatcher {holder.name} holds the lease {LEASE_KEY}"
        assert f"dispatcher {standby.name} holds the lease {LEASE_KEY}" in said

    _run(nats_url, scenario)


def test_shutdown_lets_the_call_in_flight_finish_and_leaves_the_rest_to_the_other_replica(
    nats_url: str, sandbox: Sandbox
) -> None:
    site = Site(nats_url, sandbox, hold=EVENTS)
    hold = site.hold
    ids = [f"ev-{uuid.uuid4().hex[:8]}" for _ in range(3)]

    async def scenario(js: JetStreamContext) -> None:
        # One event per fetch: what a replica did not fetch, the other one can.
        replicas = [site.replica(event_batch_size=1).serve() for _ in range(2)]
        await js.publish(topology.EVENTS_SUBJECT, _event(ids[0]))
        await asyncio.wait_for(hold.held.wait(), 30)
        (stopping,) = [r for r in replicas if r.name == hold.by]
        (other,) = [r for r in replicas if r is not stopping]
        stopping.dispatcher.shutdown()
        for event_id in ids[1:]:
            await js.publish(topology.EVENTS_SUBJECT, _event(event_id))
        hold.released.set()
        assert await stopping.served() == 0
        await eventually(lambda: _all_acked(js, topology.DISPATCH_EVENTS))
        assert sandbox.event_counts() == dict.fromkeys(ids, 1)
        assert len(stopping.transport.to(EVENTS)) == 1
        assert len(other.transport.to(EVENTS)) == 2
        assert await other.stop() == 0

    _run(nats_url, scenario)


def test_a_call_outlasting_the_grace_period_is_abandoned_and_redelivered(
    nats_url: str, sandbox: Sandbox
) -> None:
    site = Site(nats_url, sandbox, hold=EVENTS)
    hold = site.hold
    event_id = f"ev-{uuid.uuid4().hex[:8]}"

    async def scenario(js: JetStreamContext) -> None:
        # A short ack wait, so the abandoned event comes back soon.
        replicas = [
            site.replica(event_batch_size=1, event_ack_wait_s=2.0).serve() for _ in range(2)
        ]
        await js.publish(topology.EVENTS_SUBJECT, _event(event_id))
        await asyncio.wait_for(hold.held.wait(), 30)
        (stopping,) = [r for r in replicas if r.name == hold.by]
        (other,) = [r for r in replicas if r is not stopping]
        stopping.dispatcher.shutdown()
        serving = stopping.serving
        assert serving is not None
        await site.clock.advance_until(serving.done, _settle, limit_s=2 * GRACE_S)
        assert serving.result() == 0
        assert site.clock.now >= GRACE_S, "stopped before the grace period was over"
        await eventually(lambda: _all_acked(js, topology.DISPATCH_EVENTS))
        assert sandbox.event_counts() == {event_id: 1}
        assert len(other.transport.to(EVENTS)) == 1, "not redelivered to the other replica"
        assert await other.stop() == 0

    _run(nats_url, scenario)


def test_events_are_shared_by_both_replicas(nats_url: str, sandbox: Sandbox) -> None:
    """While one replica's call hangs, the other (lease holder or not) delivers the rest."""
    site = Site(nats_url, sandbox, hold=EVENTS)
    hold = site.hold
    ids = [f"ev-{uuid.uuid4().hex[:8]}" for _ in range(5)]

    async def scenario(js: JetStreamContext) -> None:
        replicas = [site.replica(event_batch_size=1).serve() for _ in range(2)]
        await js.publish(topology.EVENTS_SUBJECT, _event(ids[0]))
        await asyncio.wait_for(hold.held.wait(), 30)
        (other,) = [r for r in replicas if r.name != hold.by]
        for event_id in ids[1:]:
            await js.publish(topology.EVENTS_SUBJECT, _event(event_id))

        async def rest_delivered() -> bool:
            return sandbox.event_counts() == dict.fromkeys(ids[1:], 1)

        await eventually(rest_delivered, timeout_s=15)
        assert len(other.transport.to(EVENTS)) == 4
        hold.released.set()
        await eventually(lambda: _all_acked(js, topology.DISPATCH_EVENTS))
        assert sandbox.event_counts() == dict.fromkeys(ids, 1)
        assert [await r.stop() for r in replicas] == [0, 0]

    _run(nats_url, scenario)
