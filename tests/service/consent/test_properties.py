"""Correctness properties of the service core, checked with Hypothesis against
the real gRPC server and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.v1 import consent_pb2, contact_pb2
from marketing.v1 import service_pb2 as pb

from service.consent.rules import may_send_marketing
from service.storage.models import ConsentType
from tests.builders import consent, placed_order, product_viewed, ts
from tests.harness import ServiceHarness, unique_email, unique_phone

NOW = datetime.now(UTC)
names = st.text(min_size=1, max_size=50).filter(lambda s: s.strip() and "\x00" not in s)
past_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)
)
phones = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)
consent_types = st.sampled_from(["EMAIL", "SMS", "PUSH", "MARKETING", "ANALYTICS"])
sources = st.sampled_from(["registration", "checkout", "preferences", "footer_form", "app"])

# Rows of flow decisions (a beginning of one person's is keyed by them, an end too).
FLOW_KINDS = ("enrolment.changed", "enrolments.begun")


@st.composite
def contact_data(draw: st.DrawFn) -> contact_pb2.Contact:
    msg = contact_pb2.Contact(email=unique_email(), first_name=draw(names))
    if draw(st.booleans()):
        msg.last_name = draw(names)
    if draw(st.booleans()):
        msg.phone = draw(phones)
    if draw(st.booleans()):
        msg.registration_time.CopyFrom(ts(draw(past_times)))
    if draw(st.booleans()):
        msg.order_count = draw(st.integers(0, 10_000))
        msg.lifetime_value.currency_code = "EUR"
        msg.lifetime_value.units = draw(st.integers(0, 10**9))
    msg.language = draw(st.sampled_from(["en", "de-DE", "fr-FR", "pt-BR"]))
    msg.timezone = draw(st.sampled_from(["Europe/Berlin", "UTC", "America/New_York"]))
    msg.custom_properties.update(
        draw(
            st.dictionaries(
                st.from_regex(r"[a-z]{1,12}", fullmatch=True),
                st.one_of(st.integers(-1000, 1000), names, st.booleans()),
                max_size=5,
            )
        )
    )
    return msg


# **Feature: marketing-automation, Property 1: Contact creation includes required fields**
@settings(max_examples=100)
@given(data=contact_data())
def test_property_1_created_contacts_have_required_fields(stub, data) -> None:
    resp = stub.UpsertContact(pb.UpsertContactRequest(contact=data))
    assert resp.created
    got = stub.GetContact(pb.GetContactRequest(name=resp.contact.name)).contact
    assert got.email == data.email
    assert got.first_name == data.first_name
    assert got.HasField("registration_time")
    if data.HasField("registration_time"):
        assert got.registration_time == data.registration_time


# **Feature: marketing-automation, Property 3: Newsletter subscription adds to segment**
@settings(max_examples=100)
@given(existing=st.booleans(), source=sources, unsubscribed_before=st.booleans())
def test_property_3_subscription_joins_newsletter_segment(
    stub, harness: ServiceHarness, existing, source, unsubscribed_before
) -> None:
    email = unique_email()
    if existing:
        stub.UpsertContact(
            pb.UpsertContactRequest(
                contact=contact_pb2.Contact(email=email, first_name="Ada", phone=unique_phone())
            )
        )
    if unsubscribed_before:
        stub.Unsubscribe(pb.UnsubscribeRequest(email=email))
    resp = stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source=source))
    assert resp.contact.newsletter_member
    got = stub.GetContact(pb.GetContactRequest(email=email)).contact
    assert got.newsletter_member and got.email_opt_in and not got.suppressed
    assert (
        harness.scalar(
            "SELECT count(*) FROM marketing_segment_membership WHERE segment = 'newsletter' "
            "AND contact_id = :id",
            id=got.name.removeprefix("contacts/"),
        )
        == 1
    )


# **Feature: marketing-automation, Property 4: Unsubscribe stops all communications**
@settings(max_examples=100)
@given(
    known=st.booleans(),
    subscribed=st.booleans(),
    granted=st.lists(consent_types, max_size=5),
    reason=st.sampled_from(["", "too_many_emails", "not_relevant"]),
)
def test_property_4_unsubscribe_stops_all_communications(
    stub, harness: ServiceHarness, known, subscribed, granted, reason
) -> None:
    email = unique_email()
    if known:
        name = stub.UpsertContact(
            pb.UpsertContactRequest(
                contact=contact_pb2.Contact(email=email, first_name="Ada", phone=unique_phone())
            )
        ).contact.name
        for type_name in granted:
            stub.RecordConsent(pb.RecordConsentRequest(parent=name, consent=consent(type_name)))
    if subscribed:
        stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="form"))
    assert stub.Unsubscribe(pb.UnsubscribeRequest(email=email, reason=reason)).changed
    for channel in (ConsentType.EMAIL, ConsentType.SMS, ConsentType.PUSH):
        assert not harness.run(may_send_marketing(harness.db, email=email, channel=channel))
    if known or subscribed:
        got = stub.GetContact(pb.GetContactRequest(email=email)).contact
        assert got.suppressed
        assert not (got.email_opt_in or got.sms_opt_in or got.push_opt_in)
        assert not got.newsletter_member


# **Feature: marketing-automation, Property 30: Consent timestamp recorded**
@settings(max_examples=100)
@given(
    via_newsletter=st.booleans(),
    type_name=consent_types,
    source=sources,
    when=past_times,
    ip=st.one_of(st.just(""), st.ip_addresses().map(str)),
)
def test_property_30_consent_timestamp_and_source_recorded(
    stub, via_newsletter, type_name, source, when, ip
) -> None:
    email = unique_email()
    if via_newsletter:
        record = stub.SubscribeNewsletter(
            pb.SubscribeNewsletterRequest(email=email, source=source, ip_address=ip)
        ).consent
        parent = record.name.rsplit("/consents/", 1)[0]
        assert record.consent_time.seconds > 0
    else:
        parent = stub.UpsertContact(
            pb.UpsertContactRequest(
                contact=contact_pb2.Contact(email=email, first_name="Ada", phone=unique_phone())
            )
        ).contact.name
        record = stub.RecordConsent(
            pb.RecordConsentRequest(
                parent=parent,
                consent=consent(type_name, source=source, consent_time=ts(when), ip_address=ip),
            )
        ).consent
        assert record.consent_time.ToDatetime(tzinfo=UTC) == when
    (stored,) = stub.ListConsents(pb.ListConsentsRequest(parent=parent)).consents
    assert stored == record
    assert (stored.source, stored.ip_address) == (source, ip)
    assert stored.record_time.seconds > 0


# **Feature: marketing-automation, upsert is idempotent**
@settings(max_examples=100)
@given(data=contact_data())
def test_upsert_is_idempotent(stub, harness: ServiceHarness, data) -> None:
    first = stub.UpsertContact(pb.UpsertContactRequest(contact=data))
    before = harness.table_counts()
    again = stub.UpsertContact(pb.UpsertContactRequest(contact=data))
    assert not again.created
    assert again.contact == first.contact
    assert harness.table_counts() == before


# **Feature: marketing-automation, consent history is append-only and ordered**
@settings(max_examples=100)
@given(
    records=st.lists(st.tuples(consent_types, st.booleans(), past_times), min_size=1, max_size=8)
)
def test_consent_history_append_only_and_ordered(stub, records) -> None:
    parent = stub.UpsertContact(
        pb.UpsertContactRequest(
            contact=contact_pb2.Contact(
                email=unique_email(), first_name="Ada", phone=unique_phone()
            )
        )
    ).contact.name
    written = []
    for count, (type_name, granted, when) in enumerate(records, start=1):
        written.append(
            stub.RecordConsent(
                pb.RecordConsentRequest(
                    parent=parent, consent=consent(type_name, granted, consent_time=ts(when))
                )
            ).consent
        )
        history = stub.ListConsents(pb.ListConsentsRequest(parent=parent)).consents
        assert len(history) == count, "records are only ever added"
        assert all(w in history for w in written), "earlier records are never changed"
    keys = [(c.consent_time.ToDatetime(), int(c.name.rsplit("/", 1)[1])) for c in history]
    assert keys == sorted(keys, reverse=True), "newest first"
    contact = stub.GetContact(pb.GetContactRequest(name=parent)).contact
    newest = {}
    for c in reversed(history):  # oldest to newest, later entries win
        newest[c.type] = c.granted
    assert contact.email_opt_in == newest.get(consent_pb2.CONSENT_TYPE_EMAIL, False)
    assert contact.sms_opt_in == newest.get(consent_pb2.CONSENT_TYPE_SMS, False)
    assert contact.push_opt_in == newest.get(consent_pb2.CONSENT_TYPE_PUSH, False)


def _bad_requests(email: str, parent: str) -> list[tuple[str, object]]:
    future = ts(NOW + timedelta(days=2))
    bad_event = product_viewed(email, occur_time=future)
    return [
        (
            "UpsertContact",
            pb.UpsertContactRequest(contact=contact_pb2.Contact(email="nope", first_name="A")),
        ),
        (
            "UpsertContact",
            pb.UpsertContactRequest(
                contact=contact_pb2.Contact(email=email, first_name="A", timezone="Nowhere/City")
            ),
        ),
        ("RecordConsent", pb.RecordConsentRequest(parent=parent, consent=consent(source=""))),
        (
            "RecordConsent",
            pb.RecordConsentRequest(parent=parent, consent=consent(consent_time=future)),
        ),
        ("SubscribeNewsletter", pb.SubscribeNewsletterRequest(email=email, source="")),
        ("Unsubscribe", pb.UnsubscribeRequest(email="@example.com")),
        ("TrackEvent", pb.TrackEventRequest(event=bad_event)),
        ("TrackEvents", pb.TrackEventsRequest(events=[product_viewed(email), bad_event])),
        ("DeleteContact", pb.DeleteContactRequest(name="contacts/not-a-uuid")),
    ]


# **Feature: marketing-automation, a rejected call writes nothing**
@settings(max_examples=100)
@given(pick=st.integers(0, 8), with_contact=st.booleans())
def test_rejected_call_writes_nothing(stub, harness: ServiceHarness, pick, with_contact) -> None:
    email = unique_email()
    parent = f"contacts/{uuid.uuid4()}"
    if with_contact:
        parent = stub.UpsertContact(
            pb.UpsertContactRequest(
                contact=contact_pb2.Contact(email=email, first_name="Ada", phone=unique_phone())
            )
        ).contact.name
    method, request = _bad_requests(email, parent)[pick]
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert harness.table_counts() == before


operations = st.sampled_from(
    [
        "upsert_same",
        "upsert_new_tier",
        "consent",
        "subscribe",
        "unsubscribe",
        "event",
        "event_again",
    ]
)


# **Feature: marketing-automation, every accepted state change has exactly one outbox row**
@settings(max_examples=100)
@given(ops=st.lists(operations, min_size=1, max_size=8), tier=st.integers(0, 3))
def test_every_state_change_has_exactly_one_outbox_row(
    stub, harness: ServiceHarness, ops, tier
) -> None:
    email = unique_email()
    parent = stub.UpsertContact(
        pb.UpsertContactRequest(
            contact=contact_pb2.Contact(email=email, first_name="Ada", phone=unique_phone())
        )
    ).contact.name
    expected = 1
    event = placed_order(email, event_id=f"evt-{email}")
    for n, op in enumerate(ops):
        changed = _apply(stub, op, email, parent, event, f"tier-{tier}-{n}")
        expected += changed
        # Flow decisions a change sets off (the welcome enrolment of a new
        # contact, its exit on unsubscribing) are rows of their own, of their
        # own kind: tests/service/flows counts those.
        rows = [r for r in harness.outbox_rows(email) if r.kind not in FLOW_KINDS]
        assert len(rows) == expected, op


def _apply(stub, op: str, email: str, parent: str, event, tier: str) -> int:
    """Run one operation; return 1 if it reported a state change, else 0."""
    contact = contact_pb2.Contact(email=email)
    if op == "upsert_same":
        return int(stub.UpsertContact(pb.UpsertContactRequest(contact=contact)).created)
    if op == "upsert_new_tier":
        contact.loyalty_tier = tier
        stub.UpsertContact(pb.UpsertContactRequest(contact=contact))
        return 1
    if op == "consent":
        stub.RecordConsent(pb.RecordConsentRequest(parent=parent, consent=consent("SMS")))
        return 1
    if op == "subscribe":
        stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="form"))
        return 1
    if op == "unsubscribe":
        return int(stub.Unsubscribe(pb.UnsubscribeRequest(email=email)).changed)
    if op in ("event", "event_again"):
        return int(not stub.TrackEvent(pb.TrackEventRequest(event=event)).duplicate)
    raise AssertionError(op)
