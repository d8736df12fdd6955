"""The one-click queue, in-process, on a database of its own where no background
worker runs: each test drives the one-click worker's steps itself, on a clock of
its own. A click is answered before it is applied, shown as done meanwhile, and
survives a batch that fails and a restart; a repeat is applied once; a forged or
expired link queues nothing; the record says `one_click` and the provider is told
through the outbox; a decision taken on the address after the click comes after
it; a person erased meanwhile stays suppressed; and a batch leaves each person as
their own click would (a Hypothesis property)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, text

from service.common.validation import email_key
from service.consent import unsubscribing as consent
from service.contacts.rules import delete_contact
from service.deliveries import outbox
from service.flows import triggers as flow_triggers
from service.preferences.links import PreferenceLinks
from service.preferences.page import PageSettings, create_app
from service.storage.database import Database
from service.storage.models import Consent, ConsentType
from service.workers.one_click_worker import OneClickSettings, OneClickWorker
from tests.contact_rows import Facts, insert_contact
from tests.harness import own_database, unique_email

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
MAX_AGE_S = 3600
START = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
UNSUBSCRIBED_NOTICE = "You are unsubscribed from all our messages."


class Clock:
    """The service's clock in these tests: moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Site:
    """The preference pages over one database, and a way to post to them."""

    db: Database
    clock: Clock
    links: PreferenceLinks
    link_now: list[float]  # the links' clock (seconds): move it to expire them
    client: httpx.AsyncClient

    def url(self, contact_id: uuid.UUID) -> str:
        return self.links.url_for(contact_id)

    def worker(self, batch: int = 500) -> OneClickWorker:
        """A one-click worker as a (re)started process would make it."""
        return OneClickWorker(self.db, self.clock, OneClickSettings(batch=batch))


@pytest.fixture(scope="module")
def queue_url(database_url: str) -> Iterator[str]:
    with own_database(database_url, "oneclick") as url:
        yield url


def run_on_site(url: str, test: Callable[[Site], Awaitable[None]]) -> None:
    async def go() -> None:
        db = Database(url, pool_size=2)
        link_now = [START.timestamp()]
        links = PreferenceLinks(
            secrets.token_urlsafe(16), "http://pages", MAX_AGE_S, clock=lambda: link_now[0]
        )
        clock = Clock()
        app = create_app(db, links, PageSettings("sms-terms-1", "Reply STOP."), clock=clock)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://pages") as client:
                await test(Site(db, clock, links, link_now, client))
        finally:
            await db.close()

    asyncio.run(go())


async def subscriber(db: Database, clock: Clock) -> tuple[uuid.UUID, str]:
    """A newsletter subscriber with email consent on record."""
    email = unique_email("oneclick")
    subscription = consent.Subscription(email, "checkout")
    view, _ = await consent.subscribe_newsletter(db, subscription, clock=clock)
    return view.id, email


async def rows(db: Database, query: str, **params: Any) -> list[Any]:
    async with db.transaction() as session:
        return list((await session.execute(text(query), params)).all())


async def queued(db: Database) -> int:
    return int((await rows(db, "SELECT count(*) FROM marketing_one_click"))[0][0])


@dataclass(frozen=True)
class State:
    email_opt_in: bool
    sms_opt_in: bool
    newsletter_member: bool
    suppressed: bool


async def state_of(db: Database, contact_id: uuid.UUID, email: str) -> State:
    (found,) = await rows(
        db,
        "SELECT c.email_opt_in, c.sms_opt_in,"
        " EXISTS (SELECT FROM marketing_segment_membership m"
        "         WHERE m.contact_id = c.id AND m.segment = 'newsletter'),"
        " EXISTS (SELECT FROM marketing_suppression s WHERE s.email_sha256 = :key)"
        " FROM marketing_contact c WHERE c.id = :id",
        id=contact_id,
        key=email_key(email),
    )
    return State(*found)


async def records(db: Database, contact_id: uuid.UUID) -> list[Any]:
    """The person's consent records, in the order they were recorded."""
    return await rows(
        db,
        "SELECT type, granted, source, consent_time, recorded_at FROM marketing_consent"
        " WHERE contact_id = :id ORDER BY id",
        id=contact_id,
    )


async def told(db: Database, email: str, kind: str = "contact.unsubscribed") -> list[Any]:
    """The payloads of the person's outbox rows of `kind`, in order."""
    found = await rows(
        db,
        "SELECT kind, payload FROM marketing_outbox WHERE contact_key = :key AND kind = :kind"
        " ORDER BY seq",
        key=email_key(email),
        kind=kind,
    )
    return [outbox.payload(row.kind, row.payload) for row in found]


def test_a_click_is_answered_queued_shown_done_and_applied_by_the_worker(
    queue_url: str,
) -> None:
    async def test(site: Site) -> None:
        contact_id, email = await subscriber(site.db, site.clock)
        clicked_at = site.clock.advance(60)
        answer = await site.client.post(site.url(contact_id), data=ONE_CLICK)
        assert answer.status_code == 200
        assert await queued(site.db) == 1
        before = await state_of(site.db, contact_id, email)
        assert before == State(True, False, True, False), "answered, not yet applied"
        page = await site.client.get(site.url(contact_id))
        assert UNSUBSCRIBED_NOTICE in page.text, "the page shows what the person asked for"

        applied_at = site.clock.advance(1)
        assert await site.worker().step() == 1
        assert await queued(site.db) == 0
        assert await state_of(site.db, contact_id, email) == State(False, False, False, True)
        newest = (await records(site.db, contact_id))[-1]
        assert (newest.type, newest.granted, newest.source) == ("EMAIL", False, "one_click")
        assert (newest.consent_time, newest.recorded_at) == (clicked_at, applied_at), (
            "the decision counts from the click"
        )
        (unsubscribed,) = await told(site.db, email)
        assert unsubscribed.reason == consent.ONE_CLICK_DETAIL
        state = unsubscribed.state
        assert state.suppressed and not state.opt_in.email and not state.newsletter_member
        assert state.email == email and state.contact_id == str(contact_id)

    run_on_site(queue_url, test)


def test_a_click_survives_a_failed_batch_and_a_restart(
    queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answered, then the worker's batch fails after writing its effects (as a
    process killed mid-batch would): the transaction leaves nothing, the click
    stays queued, and a worker started afresh, over a new pool, applies it once."""
    contact: dict[str, Any] = {}

    async def click(site: Site) -> None:
        contact_id, email = await subscriber(site.db, site.clock)
        contact.update(id=contact_id, email=email)
        assert (await site.client.post(site.url(contact_id), data=ONE_CLICK)).status_code == 200

    async def fail_at_the_end(*_: Any) -> None:
        raise RuntimeError("the worker's process died")

    async def failed_batch(site: Site) -> None:
        outbox_before = len(await told(site.db, contact["email"]))
        with monkeypatch.context() as patched:
            patched.setattr(flow_triggers, "on_unsubscribed", fail_at_the_end)
            with pytest.raises(RuntimeError):
                await site.worker().step()
        assert await queued(site.db) == 1
        after = await state_of(site.db, contact["id"], contact["email"])
        assert after == State(True, False, True, False)
        assert len(await told(site.db, contact["email"])) == outbox_before

    async def restarted(site: Site) -> None:
        await site.worker().drain()
        state = await state_of(site.db, contact["id"], contact["email"])
        assert state == State(False, False, False, True)
        assert [r.source for r in await records(site.db, contact["id"])] == [
            "checkout",
            "one_click",
        ]
        assert len(await told(site.db, contact["email"])) == 1

    run_on_site(queue_url, click)
    run_on_site(queue_url, failed_batch)
    run_on_site(queue_url, restarted)


def test_a_repeated_click_is_applied_once(queue_url: str) -> None:
    async def test(site: Site) -> None:
        contact_id, email = await subscriber(site.db, site.clock)
        for _ in range(3):
            assert (await site.client.post(site.url(contact_id), data=ONE_CLICK)).status_code == 200
        assert await queued(site.db) == 1, "a repeat while queued changes nothing"
        await site.worker().drain()
        written = (len(await records(site.db, contact_id)), len(await told(site.db, email)))
        assert written == (2, 1)

        site.clock.advance(5)
        assert (await site.client.post(site.url(contact_id), data=ONE_CLICK)).status_code == 200
        await site.worker().drain()
        assert await queued(site.db) == 0
        again = (len(await records(site.db, contact_id)), len(await told(site.db, email)))
        assert again == written, "a click after it was applied changes nothing"

    run_on_site(queue_url, test)


def test_a_forged_expired_or_unknown_link_queues_nothing(queue_url: str) -> None:
    async def test(site: Site) -> None:
        contact_id, email = await subscriber(site.db, site.clock)
        url = site.url(contact_id)
        forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
        assert (await site.client.post(forged, data=ONE_CLICK)).status_code == 404
        nobody = site.url(uuid.uuid4())  # signed by us, but for no contact we hold
        assert (await site.client.post(nobody, data=ONE_CLICK)).status_code == 404
        site.link_now[0] += MAX_AGE_S + 1
        assert (await site.client.post(url, data=ONE_CLICK)).status_code == 410
        assert await queued(site.db) == 0
        assert await site.worker().step() == 0
        assert await state_of(site.db, contact_id, email) == State(True, False, True, False)

    run_on_site(queue_url, test)


def test_a_decision_taken_after_the_click_comes_after_it(queue_url: str) -> None:
    """Subscribing again (on the page that shows the click done) before the worker
    came: the subscription applies the queued click first, so the person ends
    subscribed, and the history says so in that order."""

    async def test(site: Site) -> None:
        contact_id, email = await subscriber(site.db, site.clock)
        site.clock.advance(60)
        await site.client.post(site.url(contact_id), data=ONE_CLICK)
        site.clock.advance(1)
        again = await site.client.post(site.url(contact_id), data={"action": "subscribe_again"})
        assert again.status_code == 303
        assert await queued(site.db) == 0
        assert await site.worker().step() == 0
        assert await state_of(site.db, contact_id, email) == State(True, False, True, False)
        history = [(r.granted, r.source) for r in await records(site.db, contact_id)]
        assert history == [(True, "checkout"), (False, "one_click"), (True, "preference_page")]
        kinds = [
            row[0]
            for row in await rows(
                site.db,
                "SELECT kind FROM marketing_outbox WHERE contact_key = :key ORDER BY seq",
                key=email_key(email),
            )
        ]
        assert kinds[-2:] == ["contact.unsubscribed", "newsletter.subscribed"]

    run_on_site(queue_url, test)


def test_a_person_erased_after_clicking_stays_suppressed(queue_url: str) -> None:
    async def test(site: Site) -> None:
        contact_id, email = await subscriber(site.db, site.clock)
        await site.client.post(site.url(contact_id), data=ONE_CLICK)
        await delete_contact(site.db, name=f"contacts/{contact_id}", now=site.clock())
        assert await site.worker().step() == 1
        (suppression,) = await rows(
            site.db,
            "SELECT reason, detail FROM marketing_suppression WHERE email_sha256 = :key",
            key=email_key(email),
        )
        assert tuple(suppression) == ("unsubscribed", consent.ONE_CLICK_DETAIL)
        assert await told(site.db, email) == [], "the provider was asked to erase the person"

    run_on_site(queue_url, test)


# A person before their click: email and SMS consent on record or not, a newsletter
# member or not, the address suppressed already or not; and how often they click.
people = st.lists(
    st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.integers(1, 2)),
    min_size=1,
    max_size=6,
)


async def person_as(db: Database, before: State, now: datetime) -> tuple[uuid.UUID, str]:
    email = unique_email("batch")
    facts = Facts(
        before.email_opt_in,
        before.sms_opt_in,
        False,
        phone=True,
        address_suppressed=before.suppressed,
        number_suppressed=False,
        device=False,
        member_of="newsletter" if before.newsletter_member else None,
    )
    async with db.transaction() as session:
        contact_id = await insert_contact(session, email, facts, now)
        granted = [(ConsentType.EMAIL, before.email_opt_in), (ConsentType.SMS, before.sms_opt_in)]
        for type_, on in granted:
            await session.execute(
                insert(Consent).values(
                    contact_id=contact_id,
                    type=type_,
                    granted=on,
                    source="test",
                    consent_time=now,
                    recorded_at=now,
                )
            )
    return contact_id, email


def one_click_of(before: State) -> State:
    """What the README says one click does: email withdrawn, the newsletter left,
    the address suppressed; SMS as it was."""
    return State(False, before.sms_opt_in, False, True)


@given(people=people, batch=st.integers(1, 4))
def test_a_batch_leaves_each_person_as_their_own_click_would(
    queue_url: str, people: list[tuple[bool, bool, bool, bool, int]], batch: int
) -> None:
    async def test(site: Site) -> None:
        site.clock.advance(3600)
        befores = [State(*person[:4]) for person in people]
        made = [
            await person_as(site.db, before, site.clock() - timedelta(days=1)) for before in befores
        ]
        for (contact_id, _), person in zip(made, people, strict=True):
            for _ in range(person[4]):
                await site.client.post(site.url(contact_id), data=ONE_CLICK)
        site.clock.advance(1)
        await site.worker(batch).drain()
        assert await queued(site.db) == 0
        for (contact_id, email), before in zip(made, befores, strict=True):
            after = await state_of(site.db, contact_id, email)
            assert after == one_click_of(before)
            changed = before != after
            withdrawals = [r for r in await records(site.db, contact_id) if r.source == "one_click"]
            assert [(r.type, r.granted) for r in withdrawals] == (
                [("EMAIL", False)] if before.email_opt_in else []
            )
            sent = await told(site.db, email)
            assert len(sent) == int(changed), "the provider is told of a change, once"
            for unsubscribed in sent:
                opt_in = unsubscribed.state.opt_in
                assert (opt_in.email, opt_in.sms) == (after.email_opt_in, after.sms_opt_in)
                assert unsubscribed.state.suppressed and not unsubscribed.state.newsletter_member

    run_on_site(queue_url, test)
