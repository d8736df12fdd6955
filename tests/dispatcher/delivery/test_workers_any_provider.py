"""The workers deliver through whichever provider they are given: the same deliveries, run
in-process on a real nats-server against each provider's sandbox, leave each provider holding
the events once and the person's consent as ours."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer
from marketing_runtime.timestamps import to_timestamp
from nats.aio.msg import Msg

from dispatcher.delivery.contacts import ContactsWorker
from dispatcher.delivery.events import EventsWorker
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import keepalive_every
from dispatcher.delivery.outcomes import Reporter
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.ordering.fences import Fences
from dispatcher.providers.base import Provider
from tests.bus_helpers import delivery
from tests.dispatcher.helpers import ACK_WAIT_S, expected_consent, held_lease
from tests.dispatcher.providers.under_test import (
    PROVIDERS,
    ProviderUnderTest,
    provider_under_test,
)
from tests.processes import NatsServer

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> Iterator[ProviderUnderTest]:
    with provider_under_test(request.param) as running:
        yield running


def viewed(event_id: str) -> bytes:
    event = bus_pb2.EventTracked(
        event_id=event_id,
        email=f"{event_id}@example.com",
        metric="product_viewed",
        occur_time=to_timestamp(WHEN),
    )
    event.product_viewed.product.product_id = "mug-42"
    return _delivery(bus_pb2.KIND_EVENT_TRACKED, event.email, 0, event)


def consent_changed(email: str, sequence: int, *, email_opt_in: bool, suppressed: bool) -> bytes:
    state = bus_pb2.ConsentState(email=email, newsletter_member=True, suppressed=suppressed)
    state.opt_in.email = email_opt_in
    payload = bus_pb2.ConsentChanged(state=state)
    key = uuid.uuid5(uuid.NAMESPACE_URL, email).hex
    return _delivery(bus_pb2.KIND_CONSENT_CHANGED, key, sequence, payload)


def _delivery(kind: bus_pb2.Kind, key: str, sequence: int, payload: object) -> bytes:
    return delivery(
        id=str(uuid.uuid4()),
        kind=kind,
        contact_key=key,
        sequence=sequence,
        payload=payload,  # type: ignore[arg-type]
        created=datetime.now(UTC),
    ).SerializeToString()


async def _fetch(bus: Bus, subject: str, durable: str, messages: list[bytes]) -> list[Msg]:
    assert bus.js is not None and bus.nc is not None
    for message in messages:
        await bus.js.publish(subject, message)
    puller = PullConsumer(bus.nc, stream=topology.WORK_STREAM, durable=durable)
    batch: list[Msg] = await puller.fetch(len(messages), wait_s=5, linger_s=1)
    await puller.close()
    assert len(batch) == len(messages)
    return batch


async def _on_bus(nats: NatsServer) -> Bus:
    bus = Bus(nats.url, name="test-workers-any-provider")
    bus.start()
    assert await bus.wait_ready(30)
    return bus


def test_the_events_worker_delivers_each_event_once(
    own_nats: NatsServer, provider: ProviderUnderTest
) -> None:
    ids = [f"any-{uuid.uuid4().hex[:8]}-{i}" for i in range(4)]

    async def deliver() -> None:
        bus = await _on_bus(own_nats)
        client = provider.client()
        try:
            # Fetched as main() fetches: never more than one call of the provider takes.
            per_fetch = client.limits.create_events.max_items
            messages = [viewed(event_id) for event_id in ids]
            worker = EventsWorker(
                client,
                Reporter(bus, utc_now),
                ProviderGate(),
                ErasureMarks(await bus.js.key_value(topology.FENCES_BUCKET)),  # type: ignore[union-attr]
                connection_ended=bus.connection_ended,
                max_attempts=1,
                backoff_base_s=1.0,
                keepalive_s=lambda: keepalive_every(30.0),
            )
            for start in range(0, len(messages), per_fetch):
                part = messages[start : start + per_fetch]
                await worker.handle(
                    await _fetch(bus, topology.EVENTS_SUBJECT, topology.DISPATCH_EVENTS, part)
                )
        finally:
            await client.aclose()
            await bus.close()

    asyncio.run(deliver())

    assert {i: n for i, n in provider.delivered().items() if i in ids} == dict.fromkeys(ids, 1)


def test_the_contacts_worker_brings_the_providers_consent_to_ours(
    own_nats: NatsServer, provider: ProviderUnderTest
) -> None:
    email = f"any-{uuid.uuid4().hex[:8]}@example.com"
    changes = [
        consent_changed(email, 1, email_opt_in=True, suppressed=False),
        consent_changed(email, 2, email_opt_in=True, suppressed=True),
        consent_changed(email, 3, email_opt_in=False, suppressed=False),
        consent_changed(email, 4, email_opt_in=True, suppressed=False),
    ]
    seen = []

    async def deliver() -> None:
        bus = await _on_bus(own_nats)
        client = provider.client()
        try:
            worker = await _contacts_worker(bus, client, provider.newsletter_list_id)
            for change in changes:
                batch = await _fetch(
                    bus, topology.CONTACTS_SUBJECT, topology.DISPATCH_CONTACTS, [change]
                )
                await worker.handle(batch)
                seen.append(provider.consent(email))
        finally:
            await client.aclose()
            await bus.close()

    asyncio.run(deliver())

    assert seen == [
        expected_consent(email=True, sms=False, suppressed=False),
        expected_consent(email=True, sms=False, suppressed=True),
        expected_consent(email=False, sms=False, suppressed=False),
        expected_consent(email=True, sms=False, suppressed=False),
    ]


async def _contacts_worker(bus: Bus, client: Provider, newsletter: str | None) -> ContactsWorker:
    assert bus.js is not None
    kv = await bus.js.key_value(topology.FENCES_BUCKET)
    enrolment_kv = await bus.js.key_value(topology.ENROLMENT_FENCES_BUCKET)
    return ContactsWorker(
        client,
        Reporter(bus, utc_now),
        ProviderGate(),
        Fences(kv),
        await held_lease(bus),
        ErasureMarks(kv),
        enrolment_fences=Fences(enrolment_kv),
        connection_ended=bus.connection_ended,
        max_attempts=1,
        backoff_base_s=1.0,
        keepalive_s=lambda: keepalive_every(ACK_WAIT_S),
        newsletter_list_id=newsletter,
    )
