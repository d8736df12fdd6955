"""A delivery the contacts worker cannot read (an old release's message the
legacy decoder left without a type, or a type that is not contact work) fails
at once: reported FAILED with its old kind, dead-lettered under that kind, and
acked, while the rest of its batch is delivered. The worker runs in-process on
a real nats-server and sends to the sandbox over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import parse_results
from marketing_runtime.pull import PullConsumer

from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.bus_helpers import delivery
from tests.dispatcher.helpers import API_KEY, contacts_worker, held_lease
from tests.harness import eventually
from tests.processes import NatsServer


def _old(kind: str, payload_json: bytes, sequence: int) -> bus_pb2.Delivery:
    """A delivery as a release before the typed contract wrote it."""
    message = bus_pb2.Delivery(
        id=str(uuid.uuid4()),
        contact_key=uuid.uuid4().hex,
        sequence=sequence,
        kind=kind,
        payload_json=payload_json,
    )
    message.create_time.FromDatetime(datetime.now(UTC))
    return message


def test_unreadable_deliveries_fail_at_once_and_hold_up_nothing(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    readable = delivery(
        id=str(uuid.uuid4()),
        kind=bus_pb2.KIND_CONTACT_UPSERTED,
        contact_key=uuid.uuid4().hex,
        sequence=5,
        payload=bus_pb2.ContactUpserted(email=email),
        created=datetime.now(UTC),
    )
    bad_payload = _old("contact.upserted", b'{"no_email": true}', 1)  # a kind the decoder knows
    unknown_kind = _old("segment.joined", b'{"email": "a@example.com"}', 2)
    no_kind = _old("", b"{}", 3)
    not_contact_work = delivery(
        id=str(uuid.uuid4()),
        kind=bus_pb2.KIND_EVENT_TRACKED,
        contact_key=uuid.uuid4().hex,
        sequence=4,
        payload=bus_pb2.EventTracked(event_id="e1", email=email, metric="m"),
        created=datetime.now(UTC),
    )
    sent = [bad_payload, unknown_kind, no_kind, not_contact_work, readable]

    async def scenario() -> tuple[list[bus_pb2.DeliveryResult], dict[str, str], bool]:
        bus = Bus(own_nats.url, name="test-unreadable")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        for message in sent:
            await bus.js.publish(topology.CONTACTS_SUBJECT, message.SerializeToString())
        puller = PullConsumer(
            bus.nc, stream=topology.WORK_STREAM, durable=topology.DISPATCH_CONTACTS
        )
        batch = await puller.fetch(len(sent), wait_s=5, linger_s=1)
        assert len(batch) == len(sent)
        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url) as provider:
            worker = await contacts_worker(bus, provider, await held_lease(bus))
            await worker.handle(batch)

        async def all_acked() -> bool:
            # Acks are sent without a reply: the server takes them in its own time.
            assert bus.js is not None
            info = await bus.js.consumer_info(topology.WORK_STREAM, topology.DISPATCH_CONTACTS)
            return (info.num_ack_pending or 0) == 0

        acked = await eventually(all_acked, timeout_s=10)
        results = await bus.js.get_last_msg(topology.RESULTS_STREAM, topology.RESULTS_SUBJECT)
        dead: dict[str, str] = {}
        for subject in ("contact.upserted", "segment.joined", "unknown", "event.tracked"):
            raw = await bus.js.get_last_msg(topology.DEAD_STREAM, topology.dead_subject(subject))
            assert raw.data is not None
            letter = bus_pb2.DeadLetter.FromString(raw.data)
            dead[letter.delivery.id] = subject
        await puller.close()
        await bus.close()
        assert results.data is not None
        return (
            list(bus_pb2.DeliveryResults.FromString(results.data).results),
            dead,
            acked,
        )

    results, dead, acked = asyncio.run(scenario())

    assert acked, "every message acked"
    by_id = {r.delivery_id: r for r in results}
    assert by_id[readable.id].outcome == bus_pb2.OUTCOME_DELIVERED
    (upsert,) = sandbox.requests("/api/profile-import")
    assert upsert["body"]["data"]["attributes"]["email"] == email
    unreadable = [bad_payload, unknown_kind, no_kind, not_contact_work]
    for d in unreadable:
        assert by_id[d.id].outcome == bus_pb2.OUTCOME_FAILED
        assert by_id[d.id].error.startswith("unreadable delivery"), by_id[d.id].error
    assert "'segment.joined'" in by_id[unknown_kind.id].error
    # Results carry the old kind, which the service reads as the kind it names.
    assert (by_id[bad_payload.id].type, by_id[bad_payload.id].kind) == (0, "contact.upserted")
    (upgraded,) = parse_results(
        bus_pb2.DeliveryResults(results=[by_id[bad_payload.id]]).SerializeToString()
    )
    assert upgraded.type == bus_pb2.KIND_CONTACT_UPSERTED
    assert by_id[unknown_kind.id].kind == "segment.joined"
    assert dead == {
        bad_payload.id: "contact.upserted",
        unknown_kind.id: "segment.joined",
        no_kind.id: "unknown",
        not_contact_work.id: "event.tracked",
    }
