"""Engagement the providers' webhooks reported, applied against a real
PostgreSQL: each engagement recorded once, unsubscribes and spam complaints
withdrawing email consent (source: the provider) and suppressing, hard bounces
suppressing, SMS STOP withdrawing SMS consent, and a withdrawal older than the
person's newer decision changing nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing.v1 import consent_pb2
from marketing.v1 import service_pb2 as pb
from sqlalchemy import func, select

from service.common.validation import email_key
from service.engagement.rules import Reported, record
from service.metrics import ENGAGEMENT
from service.sms.suppression import phone_key
from service.storage.database import Database
from service.storage.models import Engagement, Outbox, SmsSuppression, Suppression
from tests.builders import consent, ts, upsert
from tests.harness import unique_email

T = bus_pb2.EngagementType


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def db(database_url: str, loop: asyncio.AbstractEventLoop) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    loop.run_until_complete(database.close())


def _engagement(
    email: str,
    type_: int,
    *,
    provider: str = "klaviyo",
    at: datetime | None = None,
    **fields: str,
) -> bus_pb2.Engagement:
    return bus_pb2.Engagement(
        provider=provider,
        external_id=fields.pop("external_id", uuid.uuid4().hex),
        type=type_,  # type: ignore[arg-type]
        email=email,
        occur_time=ts(at or datetime.now(UTC)),
        **fields,
    )


def _apply(loop, db: Database, *engagements: bus_pb2.Engagement) -> int:
    async def run() -> int:
        async with db.transaction() as session:
            now = datetime.now(UTC)
            return await record(session, [Reported(e, now) for e in engagements], now)

    return int(loop.run_until_complete(run()))


def _scalar(loop, db: Database, query):
    async def run():
        async with db.transaction() as session:
            return await session.scalar(query)

    return loop.run_until_complete(run())


def _subscriber(stub) -> tuple[str, str]:
    email = unique_email()
    contact = stub.SubscribeNewsletter(
        pb.SubscribeNewsletterRequest(email=email, source="checkout")
    ).contact
    return email, contact.name


def _email_consents(stub, name: str) -> list[consent_pb2.Consent]:
    listed = stub.ListConsents(pb.ListConsentsRequest(parent=name)).consents
    return [c for c in listed if c.type == consent_pb2.CONSENT_TYPE_EMAIL]


def _suppression(loop, db: Database, email: str) -> str | None:
    return _scalar(
        loop, db, select(Suppression.reason).where(Suppression.email_sha256 == email_key(email))
    )


def test_an_unsubscribe_withdraws_email_consent_in_the_audit_trail_and_suppresses(
    stub, loop, db
) -> None:
    email, name = _subscriber(stub)
    assert (
        _apply(loop, db, _engagement(email, T.ENGAGEMENT_TYPE_UNSUBSCRIBED, detail="too many")) == 1
    )
    contact = stub.GetContact(pb.GetContactRequest(name=name)).contact
    assert not contact.email_opt_in
    assert [(c.granted, c.source) for c in _email_consents(stub, name) if not c.granted] == [
        (False, "klaviyo")
    ]
    assert _suppression(loop, db, email) == "unsubscribed"
    sent = _scalar(
        loop,
        db,
        select(func.count())
        .select_from(Outbox)
        .where(Outbox.contact_key == email_key(email), Outbox.kind == "consent.changed"),
    )
    assert sent == 1


def test_a_repeated_delivery_is_applied_once(stub, loop, db) -> None:
    email, name = _subscriber(stub)
    unsubscribe = _engagement(email, T.ENGAGEMENT_TYPE_UNSUBSCRIBED, provider="activecampaign")
    before = ENGAGEMENT.labels("activecampaign", "unsubscribed")._value.get()
    assert _apply(loop, db, unsubscribe, unsubscribe) == 1
    assert _apply(loop, db, unsubscribe) == 0
    assert ENGAGEMENT.labels("activecampaign", "unsubscribed")._value.get() == before + 1
    assert len([c for c in _email_consents(stub, name) if not c.granted]) == 1


def test_a_spam_complaint_suppresses_as_such_and_a_hard_bounce_keeps_consent(
    stub, loop, db
) -> None:
    spammer, _ = _subscriber(stub)
    _apply(loop, db, _engagement(spammer, T.ENGAGEMENT_TYPE_SPAM_COMPLAINT))
    assert _suppression(loop, db, spammer) == "spam_complaint"
    bounced, name = _subscriber(stub)
    _apply(loop, db, _engagement(bounced, T.ENGAGEMENT_TYPE_BOUNCED, bounce_type="hard"))
    assert _suppression(loop, db, bounced) == "hard_bounce"
    assert stub.GetContact(pb.GetContactRequest(name=name)).contact.email_opt_in
    soft, _ = _subscriber(stub)
    _apply(loop, db, _engagement(soft, T.ENGAGEMENT_TYPE_BOUNCED, bounce_type="soft"))
    assert _suppression(loop, db, soft) is None


@pytest.mark.parametrize(
    "written",
    [
        lambda p: p,
        lambda p: f"{p[:3]} {p[3:6]} {p[6:9]}-{p[9:]}",  # +49 15x xxx-xxxx
        lambda p: f"00{p[1:3]} ({p[3:6]}) {p[6:]}",  # 0049 (15x) ...
    ],
    ids=["e164", "spaced", "international-prefix"],
)
def test_an_sms_stop_by_phone_withdraws_sms_consent_only(stub, loop, db, written) -> None:
    phone = f"+4915{uuid.uuid4().int % 10**9:09d}"
    contact = stub.UpsertContact(upsert(unique_email(), phone=phone)).contact
    stub.RecordConsent(pb.RecordConsentRequest(parent=contact.name, consent=consent("SMS")))
    stub.RecordConsent(pb.RecordConsentRequest(parent=contact.name, consent=consent("EMAIL")))
    stop = bus_pb2.Engagement(
        provider="activecampaign",
        external_id=uuid.uuid4().hex,
        type=T.ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED,
        phone=written(phone),  # as the provider wrote it
    )
    _apply(loop, db, stop)
    got = stub.GetContact(pb.GetContactRequest(name=contact.name)).contact
    assert (got.sms_opt_in, got.email_opt_in) == (False, True)
    assert _suppression(loop, db, contact.email) is None


def test_an_unsubscribe_older_than_a_new_subscription_changes_nothing(stub, loop, db) -> None:
    email, name = _subscriber(stub)
    late = _engagement(
        email, T.ENGAGEMENT_TYPE_UNSUBSCRIBED, at=datetime.now(UTC) - timedelta(days=1)
    )
    _apply(loop, db, late)
    assert stub.GetContact(pb.GetContactRequest(name=name)).contact.email_opt_in
    assert _suppression(loop, db, email) is None
    effect = _scalar(
        loop, db, select(Engagement.effect).where(Engagement.external_id == late.external_id)
    )
    assert effect == "stale"


def test_an_unknown_address_unsubscribing_is_suppressed(loop, db) -> None:
    email = unique_email()
    _apply(loop, db, _engagement(email, T.ENGAGEMENT_TYPE_UNSUBSCRIBED))
    assert _suppression(loop, db, email) == "unsubscribed"


def test_opens_and_clicks_are_recorded_per_campaign(stub, loop, db) -> None:
    email, name = _subscriber(stub)
    campaign = f"cmp-{uuid.uuid4().hex[:8]}"
    _apply(
        loop,
        db,
        _engagement(email, T.ENGAGEMENT_TYPE_DELIVERED, campaign_id=campaign),
        _engagement(email, T.ENGAGEMENT_TYPE_OPENED, campaign_id=campaign),
        _engagement(email, T.ENGAGEMENT_TYPE_CLICKED, campaign_id=campaign, url="https://s/p"),
    )
    types = _scalar(
        loop,
        db,
        select(func.array_agg(Engagement.type)).where(Engagement.campaign_id == campaign),
    )
    assert sorted(types) == ["clicked", "delivered", "opened"]
    assert stub.GetContact(pb.GetContactRequest(name=name)).contact.email_opt_in


_TYPES = st.sampled_from(
    [
        T.ENGAGEMENT_TYPE_DELIVERED,
        T.ENGAGEMENT_TYPE_OPENED,
        T.ENGAGEMENT_TYPE_UNSUBSCRIBED,
        T.ENGAGEMENT_TYPE_SPAM_COMPLAINT,
        T.ENGAGEMENT_TYPE_BOUNCED,
    ]
)


@settings(max_examples=100, deadline=None)
@given(
    kinds=st.lists(_TYPES, min_size=1, max_size=6),
    repeats=st.lists(st.integers(0, 5), max_size=6),
    split=st.integers(0, 6),
)
def test_redelivered_engagement_leaves_the_state_of_one_delivery(
    stub, loop, db, kinds, repeats, split
) -> None:
    """Any batch of engagements, delivered again in any grouping with repeats,
    leaves the consent trail, suppression and records of one delivery."""
    email, name = _subscriber(stub)
    once = [
        _engagement(email, k, bounce_type="hard" if k == T.ENGAGEMENT_TYPE_BOUNCED else "")
        for k in kinds
    ]
    assert _apply(loop, db, *once) == len(once)
    trail = [
        (c.granted, c.source)
        for c in stub.ListConsents(pb.ListConsentsRequest(parent=name)).consents
    ]
    suppressed = _suppression(loop, db, email)
    again = once + [once[i % len(once)] for i in repeats]
    assert _apply(loop, db, *again[:split]) == 0
    assert _apply(loop, db, *again[split:]) == 0
    assert [
        (c.granted, c.source)
        for c in stub.ListConsents(pb.ListConsentsRequest(parent=name)).consents
    ] == trail
    assert _suppression(loop, db, email) == suppressed


def test_a_hard_bounce_after_an_unsubscribe_is_not_lifted_by_a_new_opt_in(stub, loop, db) -> None:
    email, _ = _subscriber(stub)
    _apply(loop, db, _engagement(email, T.ENGAGEMENT_TYPE_UNSUBSCRIBED))
    _apply(loop, db, _engagement(email, T.ENGAGEMENT_TYPE_BOUNCED, bounce_type="hard"))
    assert _suppression(loop, db, email) == "hard_bounce"
    stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="checkout"))
    assert _suppression(loop, db, email) == "hard_bounce"


def test_a_complaint_after_a_newer_withdrawal_still_suppresses(stub, loop, db) -> None:
    email, name = _subscriber(stub)
    complained = datetime.now(UTC)
    stub.RecordConsent(
        pb.RecordConsentRequest(parent=name, consent=consent("EMAIL", granted=False))
    )
    _apply(loop, db, _engagement(email, T.ENGAGEMENT_TYPE_SPAM_COMPLAINT, at=complained))
    assert _suppression(loop, db, email) == "spam_complaint"


def test_an_erasure_keeps_the_counts_without_the_person(stub, loop, db) -> None:
    email, name = _subscriber(stub)
    opened = _engagement(email, T.ENGAGEMENT_TYPE_OPENED, campaign_id="erased-c", url="https://s")
    _apply(loop, db, opened)
    stub.DeleteContact(pb.DeleteContactRequest(name=name))
    row = loop.run_until_complete(_row_of(db, opened.external_id))
    assert (row.contact_id, row.email_sha256, row.url, row.type) == (None, None, "", "opened")


async def _row_of(db: Database, external_id: str) -> Engagement:
    async with db.transaction() as session:
        found = await session.scalar(
            select(Engagement).where(Engagement.external_id == external_id)
        )
        assert found is not None
        return found


def test_batches_unsubscribing_the_same_people_in_opposite_orders_never_deadlock(
    stub, loop, db
) -> None:
    people = [_subscriber(stub)[0] for _ in range(6)]

    async def batch(order: list[str]) -> None:
        async with db.transaction() as session:
            now = datetime.now(UTC)
            engagements = [_engagement(e, T.ENGAGEMENT_TYPE_UNSUBSCRIBED) for e in order]
            await record(session, [Reported(e, now) for e in engagements], now)

    async def race() -> None:
        await asyncio.gather(*(batch(people if n % 2 else people[::-1]) for n in range(6)))

    loop.run_until_complete(race())
    assert all(_suppression(loop, db, e) == "unsubscribed" for e in people)


def _number_stopped(loop, db: Database, phone: str) -> bool:
    key = phone_key(phone)
    found = _scalar(
        loop, db, select(SmsSuppression.phone_sha256).where(SmsSuppression.phone_sha256 == key)
    )
    return found is not None


def test_a_stop_for_a_number_the_contact_no_longer_has_stops_that_number_only(
    stub, loop, db, harness
) -> None:
    old, new = f"+4915{uuid.uuid4().int % 10**9:09d}", f"+4916{uuid.uuid4().int % 10**9:09d}"
    email = unique_email()
    contact = stub.UpsertContact(upsert(email, phone=old)).contact
    stub.UpsertContact(upsert(email, phone=new))
    stub.RecordConsent(pb.RecordConsentRequest(parent=contact.name, consent=consent("SMS")))
    flows_before = harness.outbox_rows(email, "enrolment.changed")
    stop = _engagement(email, T.ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED, phone=old)
    _apply(loop, db, stop)
    assert _number_stopped(loop, db, old) and not _number_stopped(loop, db, new)
    got = stub.GetContact(pb.GetContactRequest(name=contact.name)).contact
    assert got.sms_opt_in, "the new number's consent stands"
    assert _suppression(loop, db, email) is None, "a STOP suppresses no address"
    assert harness.outbox_rows(email, "enrolment.changed") == flows_before, "and ends no flow"


def test_a_stop_from_a_stranger_stops_the_number_and_tells_no_one(stub, loop, db) -> None:
    phone = f"+4917{uuid.uuid4().int % 10**9:09d}"
    email = unique_email()  # the provider names an address we hold no contact for
    _apply(loop, db, _engagement(email, T.ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED, phone=phone))
    assert _number_stopped(loop, db, phone)
    assert _suppression(loop, db, email) is None
