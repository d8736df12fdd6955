"""A pending chunk (written down, maybe published, checkpoint not moved):
its row carries its count before it goes out, and a driver rebuilding it
after a crash cuts it as a new chunk is cut."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime.clock import utc_now

from service.contact_sync import progress, rules
from service.storage.models import ContactSyncState
from service.workers.sync_driver import DriverSettings, Step, SyncDriver
from tests.processes import SMALL_MAX_PAYLOAD, NatsServer
from tests.service.contact_sync.sync_bus import contact_ids, imported, sync_bus


def test_a_chunk_given_up_before_its_checkpoint_moved_counts_all_its_people_failed(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            ids = await bus.add_contacts(8)
            sync_id = await bus.start()
            # The driver wrote chunk 1 down; its result comes before mark_published.
            async with bus.db.transaction() as session:
                assert await progress.mark_pending(session, sync_id, 1, ids[-1], 8, utc_now())
            chunk = bus_pb2.ContactSyncChunk(sync_id=str(sync_id), sequence=1)
            given_up = imported(chunk, error="attempts exhausted: 500")
            await bus.report(given_up)
            row = await bus.sync(sync_id)
            assert (row.reported_chunks, row.given_up_chunks) == (1, 1)
            assert (row.imported_contacts, row.failed_contacts) == (0, 8)

    asyncio.run(scenario())


@pytest.fixture
def small_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats", max_payload=SMALL_MAX_PAYLOAD)
    server.start()
    yield server
    server.stop()


def test_a_pending_chunk_rebuilt_after_a_crash_fits_max_payload_and_its_range_shrinks(
    sync_db: str, small_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, small_nats.url) as bus:
            big = {f"p{i}": "x" * 1000 for i in range(10)}  # ~10 kB of JSON each
            ids = await bus.add_contacts(12, custom_properties=big)
            sync_id = await bus.start()
            # As if a driver had written chunk 1 down over a few contacts, died,
            # and contacts created meanwhile (random ids) filled its whole range.
            await bus.sql(
                "UPDATE marketing_contact_sync SET pending_sequence = 1, pending_upper = :last "
                "WHERE id = :id",
                last=ids[-1],
                id=sync_id,
            )
            settings = DriverSettings(chunk_contacts=20, max_in_flight=20)
            driver = SyncDriver(bus.db, bus.bus, settings=settings)
            assert await driver.step() is Step.WORKED
            assert bus.bus.nc is not None and bus.bus.nc.is_connected
            row = await bus.sync(sync_id)
            assert row.pending_sequence is None
            assert row.checkpoint is not None and row.checkpoint < ids[-1]
            while await driver.step() is Step.WORKED:
                pass
            chunks = await bus.take_chunks((await bus.sync(sync_id)).published_chunks)
            assert len(chunks) > 1
            assert all(c.ByteSize() < bus.bus.nc.max_payload for c in chunks)
            assert contact_ids(chunks) == ids  # each once, in order
            await bus.report(*(imported(c) for c in chunks))
            await driver.step()
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.SUCCEEDED
            assert row.imported_contacts == len(ids)

    asyncio.run(scenario())


def test_a_chunk_never_reported_is_given_up_past_its_deadline_and_the_sync_ends(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            await bus.add_contacts(15)
            sync_id = await bus.start()
            now = [utc_now()]
            settings = DriverSettings(chunk_contacts=10, max_in_flight=2, chunk_deadline_s=60)
            driver = SyncDriver(bus.db, bus.bus, clock=lambda: now[0], settings=settings)
            assert [await driver.step() for _ in range(3)] == [Step.WORKED] * 2 + [Step.WAITING]
            first, second = await bus.take_chunks(2)
            await bus.report(imported(first))  # chunk 2's result never comes
            now[0] += timedelta(seconds=59)
            # It reaches the last contact, then waits for chunk 2.
            assert [await driver.step() for _ in range(2)] == [Step.WORKED, Step.WAITING]
            assert (await bus.sync(sync_id)).state is ContactSyncState.RUNNING
            now[0] += timedelta(seconds=2)
            assert await driver.step() is Step.WORKED
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.FAILED
            assert row.error == "chunk 2 given up: no result within 60 s of publishing"
            assert (row.imported_contacts, row.failed_contacts) == (10, 5)
            # A result arriving after all counts nothing twice.
            await bus.report(imported(second))
            assert (await bus.sync(sync_id)).imported_contacts == 10

    asyncio.run(scenario())


def test_a_cancelled_sync_with_a_chunk_never_reported_ends_past_the_deadline(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            await bus.add_contacts(15)
            sync_id = await bus.start()
            now = [utc_now()]
            settings = DriverSettings(chunk_contacts=10, max_in_flight=2, chunk_deadline_s=60)
            driver = SyncDriver(bus.db, bus.bus, clock=lambda: now[0], settings=settings)
            assert await driver.step() is Step.WORKED
            await rules.cancel_sync(bus.db, name=rules.sync_name(sync_id), now=now[0])
            assert await driver.step() is Step.WAITING  # chunk 1 is out, unreported
            now[0] += timedelta(seconds=61)
            assert await driver.step() is Step.WORKED
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.FAILED
            assert row.ended_at == now[0]

    asyncio.run(scenario())


def test_chunks_imported_and_unreported_leave_room_for_more_up_to_max_in_flight(
    sync_db: str, sync_nats: NatsServer
) -> None:
    """Chunks past their import wait for their consent calls in the stream:
    they count against max_in_flight, not against max_importing."""

    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            await bus.add_contacts(50)
            await bus.start()
            settings = DriverSettings(chunk_contacts=10, max_in_flight=4, max_importing=2)
            driver = SyncDriver(bus.db, bus.bus, settings=settings)
            assert [await driver.step() for _ in range(3)] == [Step.WORKED] * 2 + [Step.IMPORTING]
            await bus.take_chunks(2)  # imported (acked), their results not yet in
            steps = [await driver.step() for _ in range(3)]
            assert steps == [Step.WORKED, Step.WORKED, Step.WAITING], "4 in flight at most"

    asyncio.run(scenario())
