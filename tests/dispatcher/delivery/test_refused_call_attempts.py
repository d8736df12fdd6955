"""Attempts of a refused consent call, counted as before narrowing was written
once: the rest of a call whose refusal named items is the same call going on
(its attempts count on, within the same budget); the halves of a refusal that
named none are calls of their own. The contacts worker runs in-process on a
virtual clock, a real nats-server and the sandbox over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from marketing_runtime.legacy import payload_from_json
from marketing_runtime.pull import PullConsumer

from dispatcher.providers.klaviyo.bodies import PROFILES_PREFIX
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.bus_helpers import delivery
from tests.dispatcher.helpers import API_KEY, contacts_worker, held_lease
from tests.dispatcher.virtual_clock import VirtualClock
from tests.harness import eventually
from tests.processes import NatsServer

SUPPRESS = "/api/profile-suppression-bulk-create-jobs"
FIRST_NAMED = {"status": 400, "pointer": f"{PROFILES_PREFIX}/0/attributes/email"}
NONE_NAMED = {"status": 400}
UNAVAILABLE = {"status": 503}
D, F = bus_pb2.OUTCOME_DELIVERED, bus_pb2.OUTCOME_FAILED


def _suppression(email: str, sequence: int) -> bytes:
    kind = bus_pb2.KIND_CONSENT_CHANGED
    return delivery(
        id=str(uuid.uuid4()),
        kind=kind,
        contact_key=uuid.uuid5(uuid.NAMESPACE_URL, email).hex,
        sequence=sequence,
        payload=payload_from_json(kind, {"email": email, "suppressed": True}),
        created=datetime.now(UTC),
    ).SerializeToString()


def _outcomes(
    nats: NatsServer, sandbox: Sandbox, faults: list[dict[str, Any]]
) -> list[tuple[int, int]]:
    """Three people suppressed in one call, which meets `faults` in turn; with
    two attempts each: (outcome, attempts) per person."""
    for fault in faults:
        sandbox.add_fault(path=SUPPRESS, **fault)
    clock = VirtualClock()
    emails = [f"refused-{uuid.uuid4().hex[:8]}-{i}@example.com" for i in range(3)]

    async def scenario() -> list[tuple[int, int]]:
        bus = Bus(nats.url, name="test-refused-call")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        for i, email in enumerate(emails):
            await bus.js.publish(topology.CONTACTS_SUBJECT, _suppression(email, i + 1))
        puller = PullConsumer(
            bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_CONTACTS
        )
        batch = await puller.fetch(len(emails), wait_s=5, linger_s=1)
        assert len(batch) == len(emails)
        lease = await held_lease(bus, ttl_s=1e6, clock=clock.monotonic)
        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url) as provider:
            worker = await contacts_worker(bus, provider, lease, clock=clock, max_attempts=2)

            async def waiting_or_done() -> bool:
                # One sleeper is the keepalive's; a second is the worker's own wait.
                return handling.done() or clock.sleepers() >= 2

            async def settle() -> None:
                await eventually(waiting_or_done)

            handling = asyncio.create_task(worker.handle(batch))
            await clock.advance_until(handling.done, settle, limit_s=1000)
            await handling
        raw = await bus.js.get_last_msg(topology.RESULTS_STREAM, topology.RESULTS_SUBJECT)
        await puller.close()
        await bus.close()
        assert raw.data is not None
        results = bus_pb2.DeliveryResults.FromString(raw.data).results
        sent = [bus_pb2.Delivery.FromString(msg.data) for msg in batch]
        email_of = {d.id: d.consent_changed.state.email for d in sent}
        by_email = {email_of[r.delivery_id]: (r.outcome, r.attempts) for r in results}
        return [by_email[email] for email in emails]

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        # The rest goes again as attempt 2 of the same call.
        ([FIRST_NAMED], [(F, 1), (D, 2), (D, 2)]),
        # ... so a retryable failure then spends the budget of two.
        ([FIRST_NAMED, UNAVAILABLE], [(F, 1), (F, 2), (F, 2)]),
        # Halves start afresh: [0] fails again and is retried, [1, 2] goes through.
        ([NONE_NAMED, UNAVAILABLE], [(D, 2), (D, 1), (D, 1)]),
    ],
)
def test_the_rest_of_a_refused_call_keeps_counting_its_attempts(
    own_nats: NatsServer,
    sandbox: Sandbox,
    faults: list[dict[str, Any]],
    expected: list[tuple[int, int]],
) -> None:
    assert _outcomes(own_nats, sandbox, faults) == expected
