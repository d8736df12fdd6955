"""The workers size their calls by the limits the provider states, not by any one
provider's numbers: a Klaviyo client stating smaller limits (as a second provider
might) gets calls that fit them, and event calls are sized in the bytes the
provider receives. Both workers run in-process on a real nats-server and send to
the sandbox over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds, topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.legacy import payload_from_json
from marketing_runtime.pull import PullConsumer
from marketing_runtime.timestamps import to_timestamp
from nats.aio.msg import Msg

from dispatcher.delivery.events import EventsWorker
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import keepalive_every
from dispatcher.delivery.outcomes import Reporter
from dispatcher.delivery.translate import tracked_event
from dispatcher.main import event_batch
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.providers.base import Limits, OperationLimits
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.providers.klaviyo.limits import EVENTS_JOB_BYTES, LIMITS
from dispatcher.sandbox import Sandbox
from dispatcher.settings import DispatcherSettings
from tests.bus_helpers import delivery
from tests.dispatcher.helpers import API_KEY, contacts_worker, held_lease
from tests.processes import NatsServer

EVENTS_BULK, ONE_EVENT = "/api/event-bulk-create-jobs", "/api/events"
UNSUBSCRIBE = "/api/profile-subscription-bulk-delete-jobs"
SUPPRESS = "/api/profile-suppression-bulk-create-jobs"


def _client(
    sandbox: Sandbox, limits: Limits, transport: httpx.AsyncBaseTransport | None = None
) -> KlaviyoClient:
    client = KlaviyoClient(API_KEY, base_url=sandbox.base_url, transport=transport)
    client.limits = limits
    return client


class _Observed(httpx.AsyncBaseTransport):
    """The real transport, noting each request's body size and the status it got
    (the sandbox records only the requests it accepts)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.sent: list[tuple[str, int, int]] = []  # (path, body bytes, status)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.sent.append((request.url.path, len(request.content), response.status_code))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _delivery(kind: str, key: str, sequence: int, payload: dict[str, Any]) -> bus_pb2.Delivery:
    return delivery(
        id=str(uuid.uuid4()),
        kind=kinds.from_name(kind),
        contact_key=key,
        sequence=sequence,
        # The payload in the JSON form of earlier releases, typed as the legacy decoder does.
        payload=payload_from_json(kinds.from_name(kind), payload),
        created=datetime.now(UTC),
    )


async def _fetched(nats: NatsServer, subject: str, durable: str, messages: list[bytes]) -> Any:
    bus = Bus(nats.url, name="test-provider-limits")
    bus.start()
    assert await bus.wait_ready(30)
    assert bus.js is not None and bus.nc is not None
    for message in messages:
        await bus.js.publish(subject, message)
    puller = PullConsumer(bus.nc, stream=topology.WORK_STREAM, durable=durable)
    batch: list[Msg] = await puller.fetch(len(messages), wait_s=5, linger_s=1)
    assert len(batch) == len(messages)
    await puller.close()
    return bus, batch


def _items_per_call(sandbox: Sandbox, path: str) -> list[int]:
    return [
        len(r["body"]["data"]["attributes"]["profiles"]["data"]) for r in sandbox.requests(path)
    ]


@pytest.mark.parametrize(
    ("max_items", "two_events_of_bytes", "bulk_calls"),
    [(3, False, [3, 3]), (3, True, [2, 2, 2])],  # and the last event alone, in a single call
)
def test_events_go_in_calls_of_the_items_and_bytes_the_provider_states(
    own_nats: NatsServer,
    sandbox: Sandbox,
    max_items: int,
    two_events_of_bytes: bool,
    bulk_calls: list[int],
) -> None:
    ids = [f"limits-{uuid.uuid4().hex[:8]}-{i}" for i in range(7)]
    messages = [
        _delivery(
            "event.tracked",
            f"k{i}",
            0,
            {
                "event_id": event_id,
                "email": f"{event_id}@example.com",
                "metric": "viewed_product",
                "occur_time": "2026-11-02T09:30:00+00:00",
                "properties": {"product_id": "p1"},
            },
        )
        for i, event_id in enumerate(ids)
    ]
    client = _client(sandbox, LIMITS)
    # The bytes the worker counts for an event: what it adds to the call the provider receives.
    one = max(client.prepare_event(tracked_event(m)).size for m in messages)
    wrapping = LIMITS.create_events.wrapping_bytes
    client.limits = dataclasses.replace(
        LIMITS,
        create_events=OperationLimits(
            max_items=max_items,
            max_bytes=wrapping + 2 * one if two_events_of_bytes else None,
            wrapping_bytes=wrapping,
        ),
    )

    asyncio.run(_deliver_events(own_nats, client, messages))

    assert [_events_in(r) for r in sandbox.requests(EVENTS_BULK)] == bulk_calls
    assert len(sandbox.requests(ONE_EVENT)) == 1
    assert sandbox.event_counts() == dict.fromkeys(ids, 1)


async def _deliver_events(
    nats: NatsServer, client: KlaviyoClient, messages: list[bus_pb2.Delivery]
) -> None:
    """One fetch of `messages` handled by an events worker sending through `client`."""
    bus, batch = await _fetched(
        nats,
        topology.EVENTS_SUBJECT,
        topology.DISPATCH_EVENTS,
        [m.SerializeToString() for m in messages],
    )
    async with client as provider:
        worker = EventsWorker(
            provider,
            Reporter(bus, utc_now),
            ProviderGate(),
            ErasureMarks(await bus.js.key_value(topology.FENCES_BUCKET)),
            connection_ended=bus.connection_ended,
            max_attempts=1,
            backoff_base_s=1.0,
            keepalive_s=lambda: keepalive_every(30.0),
        )
        await worker.handle(batch)
    await bus.close()


def _placed_order(event_id: str, lines: int) -> bus_pb2.Delivery:
    """An order of `lines` lines: its typed body is about half the size of its JSON."""
    event = bus_pb2.EventTracked(
        event_id=event_id,
        email=f"{event_id}@example.com",
        metric="placed_order",
        occur_time=to_timestamp(datetime(2026, 11, 2, 9, 30, tzinfo=UTC)),
    )
    order = event.placed_order.order
    order.order_id = event_id
    for j in range(lines):
        price = bus_pb2.Money(currency_code="EUR", units=12, nanos=500_000_000)
        order.lines.add(product_id=f"p-{j:04d}", title="Mug", quantity=1 + j % 3, unit_price=price)
    order.total.CopyFrom(bus_pb2.Money(currency_code="EUR", units=2500))
    return delivery(
        id=str(uuid.uuid4()),
        kind=bus_pb2.KIND_EVENT_TRACKED,
        contact_key=event.email,
        sequence=0,
        payload=event,
        created=datetime.now(UTC),
    )


def test_event_calls_fit_the_providers_body_limit_in_the_bytes_it_receives(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    ids = [f"big-{uuid.uuid4().hex[:8]}-{i:04d}" for i in range(1000)]
    messages = [_placed_order(event_id, lines=100) for event_id in ids]
    # Fewer bytes on the bus than a job takes; their JSON, twice as many.
    assert sum(m.ByteSize() for m in messages) < EVENTS_JOB_BYTES
    observed = _Observed()

    asyncio.run(_deliver_events(own_nats, _client(sandbox, LIMITS, observed), messages))

    assert {path for path, _, _ in observed.sent} == {EVENTS_BULK}
    assert all(status == 202 for _, _, status in observed.sent), observed.sent
    assert len(observed.sent) == 2  # the least that carries them
    assert all(size <= EVENTS_JOB_BYTES for _, size, _ in observed.sent)
    assert sum(size for _, size, _ in observed.sent) > EVENTS_JOB_BYTES
    assert sandbox.event_counts() == dict.fromkeys(ids, 1)
    assert sandbox.rejections() == []


def _events_in(request: dict[str, Any]) -> int:
    """Events of a bulk job (grouped per profile)."""
    profiles = request["body"]["data"]["attributes"]["events-bulk-create"]["data"]
    return sum(len(p["attributes"]["events"]["data"]) for p in profiles)


def test_planned_consent_calls_are_split_by_each_operations_limit(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    consent = dict(LIMITS.consent)
    consent["unsubscribe"] = OperationLimits(max_items=2)
    limits = dataclasses.replace(LIMITS, consent=consent)
    emails = [f"limits-{uuid.uuid4().hex[:8]}-{i}@example.com" for i in range(5)]

    async def scenario() -> None:
        messages = [
            _delivery(
                "consent.changed",
                uuid.uuid5(uuid.NAMESPACE_URL, email).hex,
                i + 1,
                {"email": email, "opt_in": {"email": False}, "suppressed": True},
            ).SerializeToString()
            for i, email in enumerate(emails)
        ]
        bus, batch = await _fetched(
            own_nats, topology.CONTACTS_SUBJECT, topology.DISPATCH_CONTACTS, messages
        )
        async with _client(sandbox, limits) as provider:
            worker = await contacts_worker(bus, provider, await held_lease(bus))
            await worker.handle(batch)
        await bus.close()

    asyncio.run(scenario())

    assert _items_per_call(sandbox, UNSUBSCRIBE) == [2, 2, 1]
    assert _items_per_call(sandbox, SUPPRESS) == [5]
    for email in emails:
        (profile,) = sandbox.profiles(email)
        reasons = {
            s["reason"] for s in profile["subscriptions"]["email"]["marketing"]["suppression"]
        }
        assert "USER_SUPPRESSED" in reasons


def test_the_event_fetch_batch_is_the_setting_bounded_by_the_provider() -> None:
    provider = KlaviyoClient(API_KEY)
    small = dataclasses.replace(LIMITS, create_events=OperationLimits(max_items=250))
    assert event_batch(DispatcherSettings(event_batch_size=500), provider) == 500
    provider.limits = small
    assert event_batch(DispatcherSettings(event_batch_size=500), provider) == 250
    assert event_batch(DispatcherSettings(event_batch_size=100), provider) == 100
