"""A sync's consent pages (migration 0014), the driver stepped in-process
against a real PostgreSQL and nats-server: the pages run ahead of the
imports, carry only consent, survive a crash mid-publish, and are counted
apart from the imports; the sync ends once both cursors are through."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from marketing_runtime.clock import utc_now

from service.common.pagination import PageTokens
from service.common.validation import email_key
from service.contact_sync import progress, rules
from service.storage.models import Contact, ContactSyncState, Suppression
from service.workers.sync_driver import DriverSettings, Step, SyncDriver
from tests.processes import NatsServer
from tests.service.contact_sync.sync_bus import SyncBus, consented, imported, sync_bus


def _driver(bus: SyncBus, **settings: float) -> SyncDriver:
    chosen = {"chunk_contacts": 10, "max_in_flight": 2, "idle_poll_s": 0.05, **settings}
    return SyncDriver(bus.db, bus.bus, settings=DriverSettings(**chosen))  # type: ignore[arg-type]


async def _until_idle(driver: SyncDriver) -> list[Step]:
    steps = [await driver.step()]
    while steps[-1] is Step.WORKED:
        steps.append(await driver.step())
    return steps


def test_pages_go_first_then_chunks_and_the_sync_ends_when_both_are_reported(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            ids = await bus.add_contacts(25, email_opt_in=True)
            sync_id = await bus.start(consent_pages=True)
            driver = _driver(bus)
            # Two pages, then two chunks; then two of each are in flight.
            assert await _until_idle(driver) == [Step.WORKED] * 4 + [Step.WAITING]
            pages, chunks = await bus.take_pages(2), await bus.take_chunks(2)
            assert [p.imported.sequence for p in pages] == [1, 2]
            assert [c.sequence for c in chunks] == [3, 4]
            # A chunk carries profiles only; a page, consent states only.
            assert not any(c.HasField("consent") for chunk in chunks for c in chunk.contacts)
            person = pages[0].people[0]
            assert person.opt_in.email and person.email and not person.contact_id
            assert pages[0].outbox_sequence == chunks[0].outbox_sequence
            refused = pages[0].people[1].email
            await bus.report(
                consented(pages[0], refused=[(refused, "Invalid phone")]),
                consented(pages[1]),
                imported(chunks[0]),
                imported(chunks[1]),
            )
            assert await _until_idle(driver) == [Step.WORKED] * 4 + [Step.WAITING]
            last_page, last_chunk = (await bus.take_pages(1))[0], (await bus.take_chunks(1))[0]
            assert [p.email for page in [*pages, last_page] for p in page.people] == [
                c.profile.email for chunk in [*chunks, last_chunk] for c in chunk.contacts
            ]  # each person once in each kind, in id order
            row = await bus.sync(sync_id)
            assert (row.reached_end, row.consent_reached_end) == (True, True)
            await bus.report(imported(last_chunk))
            assert (await bus.sync(sync_id)).state is ContactSyncState.RUNNING  # a page is out
            await bus.report(consented(last_page))
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.SUCCEEDED
            assert (row.published_contacts, row.imported_contacts, row.failed_contacts) == (
                len(ids),
                len(ids),
                0,
            )
            assert row.consent_failed_contacts == 1
            assert (row.published_chunks, row.reported_chunks) == (6, 6)
            assert (row.consent_published_chunks, row.consent_reported_chunks) == (3, 3)
            errors = await _errors(bus, sync_id)
            assert errors == [(refused, "consent: Invalid phone")]

    asyncio.run(scenario())


def test_pages_run_ahead_while_the_imports_are_at_their_bound(
    sync_db: str, sync_nats: NatsServer
) -> None:
    """The dispatchers import slowly (nobody takes the chunks here): the driver
    pages every person's consent meanwhile."""

    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            await bus.add_contacts(40)
            await bus.start(consent_pages=True)
            driver = _driver(bus, max_in_flight=10, max_importing=1)
            steps = await _until_idle(driver)
            assert steps[-1] is Step.IMPORTING
            assert len(await bus.take_pages(4)) == 4  # every person's consent
            assert len(await bus.take_chunks(1)) == 1

    asyncio.run(scenario())


def test_a_page_published_but_not_checkpointed_is_published_again_once(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            ids = await bus.add_contacts(12)
            sync_id = await bus.start(consent_pages=True)
            assert await _driver(bus).step() is Step.WORKED  # page 1
            row = await bus.sync(sync_id)
            assert (row.consent_checkpoint, row.checkpoint) == (ids[9], None)
            # As if the process died after publishing page 1, before its checkpoint.
            await bus.sql(
                "UPDATE marketing_contact_sync SET pending_sequence = 1, pending_consent = true, "
                "pending_upper = consent_checkpoint, consent_checkpoint = NULL, "
                "published_chunks = 0, consent_published_chunks = 0 WHERE id = :id",
                id=sync_id,
            )
            restarted = _driver(bus)
            assert await restarted.step() is Step.WORKED
            row = await bus.sync(sync_id)
            assert (row.consent_checkpoint, row.pending_sequence, row.pending_consent) == (
                ids[9],
                None,
                False,
            )
            assert (row.published_chunks, row.consent_published_chunks) == (1, 1)
            (page,) = await bus.take_pages(1)  # the second publication was a duplicate
            assert len(page.people) == 10

    asyncio.run(scenario())


def test_a_page_given_up_fails_the_sync_and_its_people_count_as_consent_failures(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            (suppressed, *_) = await bus.add_contacts(5)
            async with bus.db.transaction() as session:
                person = await session.get(Contact, suppressed)
                assert person is not None
                session.add(
                    Suppression(email_sha256=email_key(person.email), reason="unsubscribed")
                )
            sync_id = await bus.start(consent_pages=True)
            await _until_idle(_driver(bus))
            (page,), (chunk,) = await bus.take_pages(1), await bus.take_chunks(1)
            assert [p.suppressed for p in page.people].count(True) == 1
            await bus.report(imported(chunk), consented(page, error="attempts exhausted: 429"))
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.FAILED
            assert row.error == f"chunk {page.imported.sequence} given up: attempts exhausted: 429"
            assert (row.imported_contacts, row.failed_contacts) == (5, 0)
            assert row.consent_failed_contacts == 5

    asyncio.run(scenario())


def test_an_overdue_page_is_given_up_as_consent_failures(
    sync_db: str, sync_nats: NatsServer
) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            await bus.add_contacts(3)
            sync_id = await bus.start(consent_pages=True)
            await _until_idle(_driver(bus))
            (chunk,) = await bus.take_chunks(1)
            await bus.take_pages(1)
            await bus.report(imported(chunk))
            later = utc_now() + timedelta(hours=3)
            async with bus.db.transaction() as session:
                assert await progress.give_up_overdue(session, sync_id, timedelta(hours=2), later)
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.FAILED
            assert (row.imported_contacts, row.failed_contacts) == (3, 0)
            assert (row.consent_failed_contacts, row.consent_reported_chunks) == (3, 1)

    asyncio.run(scenario())


def test_a_cancel_stops_both_cursors(sync_db: str, sync_nats: NatsServer) -> None:
    async def scenario() -> None:
        async with sync_bus(sync_db, sync_nats.url) as bus:
            await bus.add_contacts(45)
            sync_id = await bus.start(consent_pages=True)
            driver = _driver(bus)
            assert await _until_idle(driver) == [Step.WORKED] * 4 + [Step.WAITING]
            await rules.cancel_sync(bus.db, name=rules.sync_name(sync_id), now=utc_now())
            assert await _until_idle(driver) == [Step.WAITING]
            pages, chunks = await bus.take_pages(2), await bus.take_chunks(2)
            await bus.report(*(imported(c) for c in chunks), consented(pages[0]))
            assert (await bus.sync(sync_id)).state is ContactSyncState.RUNNING
            await bus.report(consented(pages[1]))
            row = await bus.sync(sync_id)
            assert row.state is ContactSyncState.CANCELLED
            assert (row.imported_contacts, row.consent_reported_chunks) == (20, 2)

    asyncio.run(scenario())


async def _errors(bus: SyncBus, sync_id: uuid.UUID) -> list[tuple[str, str]]:
    page = await rules.list_sync_errors(
        bus.db, PageTokens(b"k" * 32), parent=rules.sync_name(sync_id), page_size=0, page_token=""
    )
    return [(e.email, e.reason) for e in page.errors]
