"""The sync driver, stepped in-process against a real PostgreSQL and
nats-server: keyset order and checkpoint, a crash between publishing and the
checkpoint, flow control, what a chunk carries, cancel, and results counted
once."""

from __future__ import annotations

import asyncio

from marketing.bus.v1 import bus_pb2
from marketing_runtime.clock import utc_now
from sqlalchemy import text

from service.common.pagination import PageTokens
from service.common.validation import email_key
from service.contact_sync import rules
from service.contacts.rules import NEWSLETTER_SEGMENT, delete_contact
from service.storage.models import Contact, ContactSyncState, SegmentMembership, Suppression
from service.workers.sync_driver import DriverSettings, Step, SyncDriver
from tests.harness import eventually
from tests.processes import NatsServer
from tests.service.contact_sync.sync_bus import SyncBus, contact_ids, imported, sync_bus

SMALL = DriverSettings(chunk_contacts=10, max_in_flight=2, idle_poll_s=0.05)


def _driver(bus: SyncBus, settings: DriverSettings = SMALL) -> SyncDriver:
    return SyncDriver(bus.db, bus.bus, settings=settings)


async def _steps(driver: SyncDriver, count: int) -> list[Step]:
    return [await driver.step() for _ in range(count)]


def test_chunks_follow_the_keyset_and_a_crash_before_the_checkpoint_loses_nothing(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            ids = await bus.add_contacts(25)
            sync_id = await bus.start()
            driver = _driver(bus)
            # Two chunks, then the driver waits: two are in flight (flow control).
            assert await _steps(driver, 3) == [Step.WORKED, Step.WORKED, Step.WAITING]
            row = await bus.sync(sync_id)
            assert (row.published_chunks, row.checkpoint) == (2, ids[19])
            # As if the process died after publishing chunk 2, before its checkpoint.
            await bus.sql(
                "UPDATE marketing_contact_sync SET pending_sequence = 2, "
                "pending_upper = checkpoint, checkpoint = :tenth, published_chunks = 1, "
                "published_contacts = 10 WHERE id = :id",
                tenth=ids[9],
                id=sync_id,
            )
            restarted = _driver(bus)  # another process's driver
            assert await restarted.step() is Step.WORKED
            assert (await bus.sync(sync_id)).checkpoint == ids[19]
            first = await bus.take_chunks(2)  # chunk 2 again was dropped as a duplicate
            assert [c.sequence for c in first] == [1, 2]
            await bus.report(*(imported(c) for c in first))
            assert await _steps(restarted, 3) == [Step.WORKED, Step.WORKED, Step.WAITING]
            last = await bus.take_chunks(1)
            await bus.report(imported(last[0]))
            row = await bus.sync(sync_id)
            assert contact_ids(first + last) == ids  # each once, in id order
            assert row.state is ContactSyncState.SUCCEEDED
            assert (row.published_contacts, row.imported_contacts, row.failed_contacts) == (
                25,
                25,
                0,
            )
            assert (row.published_chunks, row.reported_chunks, row.provider_jobs) == (3, 3, 3)

    asyncio.run(scenario())


def test_a_chunk_carries_profiles_and_consent_and_never_an_erased_person(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            opted_in = await bus.add_contacts(1, email_opt_in=True, loyalty_tier="gold")
            plain = await bus.add_contacts(2)
            erased = plain.pop()
            async with bus.db.transaction() as session:
                row = await session.get(Contact, plain[0])
                assert row is not None
                session.add(Suppression(email_sha256=email_key(row.email), reason="unsubscribed"))
                session.add(SegmentMembership(contact_id=opted_in[0], segment=NEWSLETTER_SEGMENT))
            await bus.sql("DELETE FROM marketing_contact WHERE id = :id", id=erased)
            await bus.start()
            await _steps(_driver(bus), 2)
            (chunk,) = await bus.take_chunks(1)
            people = {c.profile.contact_id: c for c in chunk.contacts}
            assert set(people) == {str(opted_in[0]), str(plain[0])}
            gold = people[str(opted_in[0])]
            assert gold.profile.loyalty_tier == "gold" and gold.consent.opt_in.email
            assert gold.consent.email == gold.profile.email and not gold.consent.suppressed
            assert gold.consent.newsletter_member
            assert people[str(plain[0])].consent.suppressed
            assert not people[str(plain[0])].consent.newsletter_member

    asyncio.run(scenario())


def test_a_cancelled_sync_sends_no_more_and_ends_when_the_chunks_out_are_reported(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            await bus.add_contacts(45)
            sync_id = await bus.start()
            driver = _driver(bus)
            await _steps(driver, 2)
            await rules.cancel_sync(bus.db, name=rules.sync_name(sync_id), now=utc_now())
            assert await _steps(driver, 2) == [Step.WAITING, Step.WAITING]
            out = await bus.take_chunks(2)
            await bus.report(imported(out[0]))
            assert (await bus.sync(sync_id)).state is ContactSyncState.RUNNING
            await bus.report(imported(out[1]))
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.CANCELLED and row.ended_at is not None
            assert (row.published_contacts, row.imported_contacts) == (20, 20)

    asyncio.run(scenario())


def test_results_count_once_and_refused_people_are_listed(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            await bus.add_contacts(3)
            sync_id = await bus.start()
            await _steps(_driver(bus), 2)
            (chunk,) = await bus.take_chunks(1)
            refused = chunk.contacts[1].profile.email
            result = imported(chunk, failures=[(refused, "Invalid email")], jobs=["j-1", "j-2"])
            await bus.report(result)
            await bus.report(result)  # delivered again
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.SUCCEEDED
            assert (row.imported_contacts, row.failed_contacts, row.reported_chunks) == (2, 1, 1)
            assert (row.provider_jobs, row.last_provider_job) == (2, "j-2")
            tokens = PageTokens(b"k" * 32)
            page = await rules.list_sync_errors(
                bus.db,
                tokens,
                parent=rules.sync_name(sync_id),
                page_size=0,
                page_token="",
            )
            assert [(e.email, e.reason) for e in page.errors] == [(refused, "Invalid email")]
            # Erasing the person takes their error row (personal data) with them.
            refused_id = chunk.contacts[1].profile.contact_id
            await delete_contact(bus.db, name=f"contacts/{refused_id}", now=utc_now())
            after = await rules.list_sync_errors(
                bus.db, tokens, parent=rules.sync_name(sync_id), page_size=0, page_token=""
            )
            assert after.errors == []
            assert (await bus.sync(sync_id)).failed_contacts == 1

    asyncio.run(scenario())


def test_a_chunk_given_up_on_fails_the_sync_with_the_reason(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            await bus.add_contacts(15)
            sync_id = await bus.start()
            driver = _driver(bus)
            await _steps(driver, 2)
            first, second = await bus.take_chunks(2)
            await bus.report(imported(first), imported(second, error="attempts exhausted: 429"))
            # The rest is still sent; the sync then ends FAILED.
            assert await _steps(driver, 3) == [Step.WORKED, Step.WORKED, Step.WAITING]
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.FAILED
            assert row.error == "chunk 2 given up: attempts exhausted: 429"
            assert (row.imported_contacts, row.failed_contacts) == (10, 5)

    asyncio.run(scenario())


def test_chunks_fit_the_servers_max_payload(sync_db: str, sync_nats: NatsServer) -> None:
    """Large profiles make smaller chunks: each stays under max_payload."""

    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            big = {f"p{i}": "x" * 1000 for i in range(900)}  # ~0.9 MB of JSON each
            ids = await bus.add_contacts(20, custom_properties=big)
            await bus.start()
            driver = _driver(bus, DriverSettings(chunk_contacts=20, max_in_flight=20))
            while await driver.step() is Step.WORKED:
                pass
            assert bus.bus.nc is not None
            chunks = await bus.take_chunks(3)
            sizes = [c.ByteSize() for c in chunks]
            assert all(size < bus.bus.nc.max_payload for size in sizes)
            assert contact_ids(chunks) == ids

    asyncio.run(scenario())


def test_a_chunk_result_of_an_unknown_sync_is_acked_and_ignored(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            stray = bus_pb2.ContactSyncChunkResult(sync_id="not-a-uuid", sequence=1, imported=1)
            await bus.report(stray)
            async with bus.db.transaction() as session:
                assert await rules.running_sync(session) is None

    asyncio.run(scenario())


def test_a_chunk_waits_for_a_change_in_progress_and_says_how_new_it_is(
    sync_db: str, sync_nats: NatsServer
) -> None:
    """A change committing while the chunk is read is in the chunk, and the
    chunk's outbox_sequence covers it; a change made after has a larger one
    (the dispatcher's fences tell a newer applied change by it)."""

    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            (person,) = await bus.add_contacts(1, loyalty_tier="gold")
            await bus.start()
            writer = await bus.db.engine.connect()
            await writer.execute(
                text("SELECT id FROM marketing_contact WHERE id = :id FOR UPDATE"), {"id": person}
            )
            await writer.execute(
                text("UPDATE marketing_contact SET loyalty_tier = 'platinum' WHERE id = :id"),
                {"id": person},
            )
            change = await writer.scalar(_OUTBOX_ROW)
            step = asyncio.create_task(_driver(bus).step())

            async def driver_waits_for_the_lock() -> bool:
                return bool(await _waiting_for_a_lock(bus))

            await eventually(driver_waits_for_the_lock)
            await writer.commit()
            await writer.close()
            assert await step is Step.WORKED
            (chunk,) = await bus.take_chunks(1)
            assert chunk.contacts[0].profile.loyalty_tier == "platinum"
            assert chunk.outbox_sequence >= change
            async with bus.db.transaction() as session:
                later = await session.scalar(_OUTBOX_ROW)
            assert later > chunk.outbox_sequence

    asyncio.run(scenario())


_OUTBOX_ROW = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status, created_at) "
    "VALUES (gen_random_uuid(), 'k', 'contact.upserted', '', 'COMPLETED', now()) RETURNING seq"
)


async def _waiting_for_a_lock(bus: SyncBus) -> int:
    async with bus.db.transaction() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)
