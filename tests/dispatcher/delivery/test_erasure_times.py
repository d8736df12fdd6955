"""Erasure marks compare the times messages were accepted, in seconds since the epoch, on
hosts in any time zone: both workers run in-process on a host set to New York time (a real
nats-server, the sandbox over HTTP). A message's creation time is UTC; read as local time
it would be off by the host's offset from UTC."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from marketing_runtime import kinds, topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.legacy import payload_from_json
from marketing_runtime.pull import PullConsumer

from dispatcher.delivery.events import EventsWorker
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import keepalive_every
from dispatcher.delivery.outcomes import Reporter
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.bus_helpers import delivery
from tests.dispatcher.helpers import API_KEY, contacts_worker, held_lease
from tests.harness import eventually
from tests.processes import NatsServer

ERASED_AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
# A POSIX rule, so no zoneinfo files are needed: UTC-5, UTC-4 in summer.
NEW_YORK = "EST5EDT,M3.2.0,M11.1.0"


@pytest.fixture
def new_york_host() -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = NEW_YORK
    time.tzset()
    try:
        assert time.timezone == 5 * 3600, "the host's local time is not New York's"
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


async def _bus(nats: NatsServer) -> Bus:
    bus = Bus(nats.url, name="test-erasure-times")
    bus.start()
    assert await bus.wait_ready(30)
    return bus


def _message(kind: str, contact_key: str, payload: dict[str, Any], created: datetime) -> bytes:
    message = delivery(
        id=str(uuid.uuid4()),
        kind=kinds.from_name(kind),
        contact_key=contact_key,
        sequence=1,
        # The payload in the JSON form of earlier releases, typed as the legacy decoder does.
        payload=payload_from_json(kinds.from_name(kind), payload),
        created=created,
    )
    return message.SerializeToString()


def test_an_erasure_is_marked_at_the_time_it_was_accepted(
    new_york_host: None, own_nats: NatsServer, sandbox: Sandbox
) -> None:
    key = uuid.uuid4().hex

    async def scenario() -> float:
        bus = await _bus(own_nats)
        assert bus.js is not None and bus.nc is not None
        erasure = _message("contact.erased", key, {"email": f"{key}@example.com"}, ERASED_AT)
        await bus.js.publish(topology.CONTACTS_SUBJECT, erasure)
        puller = PullConsumer(
            bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_CONTACTS
        )
        batch = await puller.fetch(1, wait_s=5, linger_s=0)
        kv = await bus.js.key_value(topology.FENCES_BUCKET)
        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url) as provider:
            worker = await contacts_worker(bus, provider, await held_lease(bus))
            await worker.handle(batch)
        mark = await kv.get(f"{ErasureMarks.PREFIX}.{key}")
        await puller.close()
        await bus.close()
        return float(mark.value or b"nan")

    assert asyncio.run(scenario()) == ERASED_AT.timestamp()


def test_events_accepted_before_an_erasure_are_dropped_and_later_ones_sent(
    new_york_host: None, own_nats: NatsServer, sandbox: Sandbox
) -> None:
    key = uuid.uuid4().hex
    before, after = f"before-{key[:8]}", f"after-{key[:8]}"

    def event(event_id: str, accepted: datetime) -> bytes:
        payload = {
            "event_id": event_id,
            "email": f"{key}@example.com",
            "metric": "viewed_product",
            "occur_time": (accepted - HOUR).isoformat(),
            "properties": {"product_id": "p1"},
        }
        return _message("event.tracked", key, payload, accepted)

    async def scenario() -> None:
        bus = await _bus(own_nats)
        assert bus.js is not None and bus.nc is not None
        kv = await bus.js.key_value(topology.FENCES_BUCKET)
        await ErasureMarks(kv).mark(key, ERASED_AT.timestamp())  # as another replica marks it
        erasures = ErasureMarks(kv)
        following = asyncio.create_task(erasures.follow())

        async def seen() -> bool:
            return bool(erasures)

        await eventually(seen)
        await bus.js.publish(topology.EVENTS_SUBJECT, event(before, ERASED_AT - HOUR))
        await bus.js.publish(topology.EVENTS_SUBJECT, event(after, ERASED_AT + HOUR))
        puller = PullConsumer(bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_EVENTS)
        batch = await puller.fetch(2, wait_s=5, linger_s=1)
        assert len(batch) == 2
        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url) as provider:
            worker = EventsWorker(
                provider,
                Reporter(bus, utc_now),
                ProviderGate(),
                erasures,
                connection_ended=bus.connection_ended,
                max_attempts=1,
                backoff_base_s=1.0,
                keepalive_s=lambda: keepalive_every(30.0),
            )
            await worker.handle(batch)
        following.cancel()
        await puller.close()
        await bus.close()

    asyncio.run(scenario())

    counts = sandbox.event_counts()
    assert (counts.get(before, 0), counts.get(after, 0)) == (0, 1)
