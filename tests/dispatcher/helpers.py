"""Helpers for the dispatcher's tests: a client on the sandbox, events, request
headers, and a contacts or enrolments worker on a bus."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from prometheus_client import REGISTRY

from dispatcher.delivery.contacts import ContactsWorker
from dispatcher.delivery.enrolments import EnrolmentsWorker
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import keepalive_every
from dispatcher.delivery.outcomes import Reporter
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.ordering.fences import Fences
from dispatcher.ordering.lease import Lease
from dispatcher.providers.base import (
    BulkCall,
    EnrolmentChange,
    Leaving,
    Provider,
    RequestStamp,
    TrackedEvent,
)
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.dispatcher.virtual_clock import VirtualClock

T = TypeVar("T")
API_KEY = "pk_test_0123456789abcdef"
ACK_WAIT_S = 30.0  # the contacts and enrolments consumers'
WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def with_client(
    sandbox: Sandbox, operation: Callable[[KlaviyoClient], Awaitable[T]], **options: Any
) -> T:
    """Run one async operation with a fresh KlaviyoClient pointed at the sandbox."""

    async def run() -> T:
        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url, **options) as client:
            return await operation(client)

    return asyncio.run(run())


async def run_enrolments(
    provider: Provider, changes: Sequence[EnrolmentChange]
) -> tuple[list[BulkCall[int]], dict[int, str]]:
    """The provider's plan for `changes` (each owned by its index), each call sent whole in
    order as planned: the calls, and the provider id each accepted owner was given."""
    accepted: dict[int, str] = {}
    calls = provider.plan_enrolments(list(enumerate(changes)), accepted.__setitem__)
    for call in calls:
        await call.send(call.owners)
    return calls, accepted


async def create_events(client: KlaviyoClient, events: Sequence[TrackedEvent]) -> None:
    """One call with `events`, each prepared as the events worker prepares it."""
    await client.create_events([client.prepare_event(e) for e in events])


def event(event_id: str, email: str = "ada@example.com", **fields: Any) -> TrackedEvent:
    values: dict[str, Any] = {
        "metric": "placed_order",
        "time": WHEN,
        "properties": {"order_id": event_id, "total": Decimal("24.00")},
        "value": Decimal("24.50"),
        "value_currency": "EUR",
    }
    return TrackedEvent(event_id=event_id, email=email, **(values | fields))


def headers(**overrides: str | None) -> dict[str, str]:
    """Valid Klaviyo request headers; an override of None leaves a header out."""
    values: dict[str, str | None] = {
        "Authorization": f"Klaviyo-API-Key {API_KEY}",
        "revision": "2026-07-15",
        "Content-Type": "application/vnd.api+json",
        "Accept": "application/vnd.api+json",
    }
    values |= overrides
    return {name: value for name, value in values.items() if value is not None}


def provider_consent(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """What GET /_sandbox/profiles?email= says about one person, in the terms we compare
    with our own state (a profile no job named yet holds no consent and no suppression).
    Of the suppressions only our own (USER_SUPPRESSED) counts, and list membership is left
    out: the planner joins the newsletter list but nothing ever leaves one."""
    if not profiles:
        return {"email": False, "sms": False, "suppressed": False, "can_receive_email": False}
    (profile,) = profiles
    email = profile["subscriptions"]["email"]["marketing"]
    reasons = {s["reason"] for s in email["suppression"]}
    return {
        "email": email["consent"] == "SUBSCRIBED",
        "sms": profile["subscriptions"]["sms"]["marketing"]["consent"] == "SUBSCRIBED",
        "suppressed": "USER_SUPPRESSED" in reasons,
        "can_receive_email": email["can_receive_email_marketing"],
    }


def expected_consent(*, email: bool, sms: bool, suppressed: bool) -> dict[str, Any]:
    """The provider state that equals ours: a channel is subscribed there when we may send
    on it (granted and not suppressed), and our suppression is its USER_SUPPRESSED."""
    may_email = email and not suppressed
    return {
        "email": may_email,
        "sms": sms and not suppressed,
        "suppressed": suppressed,
        "can_receive_email": may_email,
    }


async def held_lease(
    bus: Bus, *, ttl_s: float = 30.0, clock: Callable[[], float] = time.time
) -> Lease:
    """A lease of ordered work under a name of its own, taken on `clock`."""
    assert bus.js is not None
    leases = await bus.js.key_value(topology.LEASES_BUCKET)
    lease = Lease(leases, f"test-{uuid.uuid4().hex[:8]}", "me", ttl_s, clock=clock)
    assert await lease.acquire_or_renew()
    return lease


async def contacts_worker(
    bus: Bus,
    provider: Provider,
    lease: Lease,
    *,
    clock: VirtualClock | None = None,
    gate: ProviderGate | None = None,
    reporter: Reporter | None = None,
    max_attempts: int = 1,
    backoff_base_s: float = 1.0,
) -> ContactsWorker:
    """A contacts worker as main() builds one, with fences and erasure marks on
    `bus`; on `clock` (its sleep, and its monotonic for a gate made here) when given."""
    assert bus.js is not None
    kv = await bus.js.key_value(topology.FENCES_BUCKET)
    enrolment_kv = await bus.js.key_value(topology.ENROLMENT_FENCES_BUCKET)
    if clock is not None and gate is None:
        gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
    return ContactsWorker(
        provider,
        reporter or Reporter(bus, utc_now),
        gate or ProviderGate(),
        Fences(kv),
        lease,
        ErasureMarks(kv),
        enrolment_fences=Fences(enrolment_kv),
        connection_ended=bus.connection_ended,
        max_attempts=max_attempts,
        backoff_base_s=backoff_base_s,
        keepalive_s=lambda: keepalive_every(ACK_WAIT_S),
        newsletter_list_id=None,
        sleep=asyncio.sleep if clock is None else clock.sleep,
    )


async def enrolments_worker(
    bus: Bus,
    provider: Provider,
    lease: Lease,
    *,
    clock: VirtualClock | None = None,
    gate: ProviderGate | None = None,
    reporter: Reporter | None = None,
    max_attempts: int = 1,
    backoff_base_s: float = 1.0,
) -> EnrolmentsWorker:
    """An enrolments worker as main() builds one, with enrolment fences and erasure marks
    on `bus`; on `clock` (its sleep, and its monotonic for a gate made here) when given."""
    assert bus.js is not None
    kv = await bus.js.key_value(topology.FENCES_BUCKET)
    enrolment_kv = await bus.js.key_value(topology.ENROLMENT_FENCES_BUCKET)
    if clock is not None and gate is None:
        gate = ProviderGate(monotonic=clock.monotonic, sleep=clock.sleep)
    return EnrolmentsWorker(
        provider,
        reporter or Reporter(bus, utc_now),
        gate or ProviderGate(),
        lease,
        ErasureMarks(kv),
        enrolment_fences=Fences(enrolment_kv),
        connection_ended=bus.connection_ended,
        max_attempts=max_attempts,
        backoff_base_s=backoff_base_s,
        keepalive_s=lambda: keepalive_every(ACK_WAIT_S),
        sleep=asyncio.sleep if clock is None else clock.sleep,
    )


class EpochClock:
    """A sandbox's clock that tests set by hand: epoch seconds, `start` until moved."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def stale_reservations(operation: str) -> float:
    """Reservations of `operation` given back because they aged before their request
    went (`marketing_dispatcher_budget_stale_reservations_total`)."""
    name = "marketing_dispatcher_budget_stale_reservations_total"
    return REGISTRY.get_sample_value(name, {"operation": operation}) or 0.0


def given_back(operation: str) -> float:
    """Reservations of `operation` given back unused
    (`marketing_dispatcher_budget_given_back_total`)."""
    name = "marketing_dispatcher_budget_given_back_total"
    return REGISTRY.get_sample_value(name, {"operation": operation}) or 0.0


def late_requests(operation: str, outcome: str) -> float:
    """Requests of `operation` found late where they leave, by what was done
    (`marketing_dispatcher_budget_late_requests_total`: restamped, called_off)."""
    labels = {"operation": operation, "outcome": outcome}
    return (
        REGISTRY.get_sample_value("marketing_dispatcher_budget_late_requests_total", labels) or 0.0
    )


def stamp_ages_noted(operation: str) -> tuple[float, float]:
    """How many requests of `operation` noted their stamp's age as they left
    (`marketing_dispatcher_budget_stamp_age_seconds`), and the ages' sum."""
    name = "marketing_dispatcher_budget_stamp_age_seconds"
    labels = {"operation": operation}
    count = REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0
    return count, REGISTRY.get_sample_value(f"{name}_sum", labels) or 0.0


@dataclass
class ScriptedStamp:
    """A `RequestStamp` for client tests, of a fixed age. With `stale_where_leaving`, it
    reads fresh at the client's first look (its body built) and stale at the next
    (where the request leaves) until it is renewed: as a request that waited on a busy
    event loop between the two. With `room_where_leaving`, the budget has room for a
    stamp of now where the request leaves (`restamp`); else it has none."""

    operation: str
    aged_s: float = 0.0
    stale_where_leaving: bool = False
    room_where_leaving: bool = False
    looks: int = 0
    renewals: int = 0
    restamps: int = 0

    leavings: list[Leaving] = field(default_factory=list)  # how far each request got, in turn

    @property
    def went(self) -> int:
        """Requests that left on it."""
        return self.leavings.count(Leaving.GONE)

    def stamp(self) -> RequestStamp:
        return RequestStamp(
            self.operation,
            self._age,
            self._fresh,
            self._renew,
            self._restamp,
            self.leavings.append,
        )

    def _age(self) -> float:
        return self.aged_s

    def _fresh(self) -> bool:
        self.looks += 1
        renewed = self.renewals + self.restamps > 0
        return not self.stale_where_leaving or self.looks == 1 or renewed

    async def _restamp(self) -> bool:
        self.restamps += int(self.room_where_leaving)
        return self.room_where_leaving

    async def _renew(self) -> None:
        self.renewals += 1
