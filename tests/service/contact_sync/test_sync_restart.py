"""The service's bus workers run a sync to its end while the test answers for
the dispatcher (takes chunks, publishes their results); stopping the workers
mid-sync and starting new ones resumes from the checkpoint, with no contact
lost or sent twice."""

from __future__ import annotations

import asyncio

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology

from service.storage.models import ContactSyncState
from service.workers.runner import BusWorkers
from service.workers.sync_driver import DriverSettings
from tests.harness import eventually
from tests.processes import NatsServer
from tests.service.contact_sync.sync_bus import SyncBus, contact_ids, imported, sync_bus

SETTINGS = DriverSettings(chunk_contacts=7, max_in_flight=2, idle_poll_s=0.05)


async def _answer(bus: SyncBus, received: list[bus_pb2.ContactSyncChunk]) -> None:
    """Take what chunks there are and report them imported, as a dispatcher."""
    messages = await bus.chunks_in.fetch(10, wait_s=0.5, linger_s=0.05)
    assert bus.bus.js is not None
    for msg in messages:
        chunk = bus_pb2.ContactSyncChunk()
        chunk.ParseFromString(msg.data)
        received.append(chunk)
        await bus.bus.js.publish(topology.SYNC_RESULTS_SUBJECT, imported(chunk).SerializeToString())
        await msg.ack()


def test_a_sync_survives_its_workers_being_stopped_mid_way(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            ids = await bus.add_contacts(60)
            sync_id = await bus.start()
            received: list[bus_pb2.ContactSyncChunk] = []
            first = BusWorkers(bus.db, bus.bus, sync=SETTINGS)
            first.start()

            async def some_progress() -> bool:
                await _answer(bus, received)
                return (await bus.sync(sync_id)).reported_chunks >= 3

            await eventually(some_progress)
            await first.stop()
            stopped_at = await bus.sync(sync_id)
            assert stopped_at.state is ContactSyncState.RUNNING
            assert stopped_at.published_chunks < 9  # of 9: stopped mid-way
            second = BusWorkers(bus.db, bus.bus, sync=SETTINGS)
            second.start()

            async def ended() -> bool:
                await _answer(bus, received)
                return (await bus.sync(sync_id)).state is not ContactSyncState.RUNNING

            await eventually(ended)
            await second.stop()
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.SUCCEEDED
            assert sorted(set(contact_ids(received))) == ids
            assert len(contact_ids(received)) == len(ids)  # none twice
            assert row.imported_contacts == len(ids)
            assert [c.sequence for c in received] == list(range(1, row.published_chunks + 1))

    asyncio.run(scenario())
