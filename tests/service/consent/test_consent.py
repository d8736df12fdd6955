"""Consent, newsletter and unsubscribe over gRPC against a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2
from marketing.v1 import consent_pb2
from marketing.v1 import service_pb2 as pb

from tests.builders import consent, ts, upsert
from tests.harness import ServiceHarness, field_violations, unique_email, unique_phone


def _record(stub, parent: str, **kwargs) -> consent_pb2.Consent:
    request_id = kwargs.pop("request_id", "")
    return stub.RecordConsent(
        pb.RecordConsentRequest(parent=parent, consent=consent(**kwargs), request_id=request_id)
    ).consent


def test_record_consent_sets_opt_in_from_newest_record(stub) -> None:
    contact = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    now = datetime.now(UTC)
    _record(stub, contact.name, type_name="SMS", granted=True, consent_time=ts(now))
    # A record that arrives late but happened earlier does not override the newer one.
    _record(
        stub,
        contact.name,
        type_name="SMS",
        granted=False,
        consent_time=ts(now - timedelta(hours=1)),
    )
    got = stub.GetContact(pb.GetContactRequest(name=contact.name)).contact
    assert got.sms_opt_in
    assert not got.email_opt_in
    _record(stub, contact.name, type_name="SMS", granted=False)
    assert not stub.GetContact(pb.GetContactRequest(name=contact.name)).contact.sms_opt_in


def test_record_consent_keeps_audit_fields(stub) -> None:
    contact = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    record = _record(
        stub,
        contact.name,
        type_name="PUSH",
        source="app_settings",
        ip_address="2001:db8::1",
        user_agent="ShopApp/3.2",
    )
    assert record.name.startswith(f"{contact.name}/consents/")
    assert record.type == consent_pb2.CONSENT_TYPE_PUSH
    assert (record.source, record.ip_address, record.user_agent) == (
        "app_settings",
        "2001:db8::1",
        "ShopApp/3.2",
    )
    assert record.consent_time.seconds > 0 and record.record_time.seconds > 0


def test_record_consent_request_id_makes_retries_safe(stub, harness: ServiceHarness) -> None:
    contact = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    request_id = str(uuid.uuid4())
    first = _record(stub, contact.name, request_id=request_id)
    before = harness.table_counts()
    again = _record(stub, contact.name, request_id=request_id)
    assert again == first
    assert harness.table_counts() == before


def test_concurrent_retries_of_one_consent_record_it_once(stub) -> None:
    contact = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    request = pb.RecordConsentRequest(
        parent=contact.name, consent=consent(), request_id=str(uuid.uuid4())
    )
    # A client that times out and retries while its first call is still running.
    calls = [stub.RecordConsent.future(request) for _ in range(8)]
    names = {call.result().consent.name for call in calls}
    assert len(names) == 1
    listed = stub.ListConsents(pb.ListConsentsRequest(parent=contact.name)).consents
    assert [c.name for c in listed] == list(names)


def test_record_consent_rejects_bad_input(stub, harness: ServiceHarness) -> None:
    contact = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    before = harness.table_counts()
    bad = consent_pb2.Consent(
        source="",
        ip_address="999.1.1.1",
        consent_time=ts(datetime.now(UTC) + timedelta(hours=2)),
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.RecordConsent(
            pb.RecordConsentRequest(parent=contact.name, consent=bad, request_id="nope")
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == {
        "consent.type": "REQUIRED",
        "consent.source": "REQUIRED",
        "consent.ip_address": "INVALID_IP_ADDRESS",
        "consent.consent_time": "TIMESTAMP_IN_FUTURE",
        "request_id": "INVALID_REQUEST_ID",
    }
    assert harness.table_counts() == before


def test_record_consent_for_missing_contact(stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _record(stub, "contacts/00000000-0000-4000-8000-000000000000")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_consents_newest_first_in_pages(stub) -> None:
    contact = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for minutes in (5, 1, 3, 2, 4):
        _record(stub, contact.name, consent_time=ts(start + timedelta(minutes=minutes)))
    seen: list[datetime] = []
    token = ""
    while True:
        page = stub.ListConsents(
            pb.ListConsentsRequest(parent=contact.name, page_size=2, page_token=token)
        )
        seen.extend(c.consent_time.ToDatetime(tzinfo=UTC) for c in page.consents)
        token = page.next_page_token
        if not token:
            break
    assert seen == [start + timedelta(minutes=m) for m in (5, 4, 3, 2, 1)]


def test_list_consents_token_is_bound_to_its_contact(stub) -> None:
    a = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    b = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    for _ in range(3):
        _record(stub, a.name)
    token = stub.ListConsents(pb.ListConsentsRequest(parent=a.name, page_size=1)).next_page_token
    with pytest.raises(grpc.RpcError) as err:
        stub.ListConsents(pb.ListConsentsRequest(parent=b.name, page_token=token))
    assert field_violations(err.value) == {"page_token": "INVALID_PAGE_TOKEN"}


def test_consent_history_cannot_be_edited(harness: ServiceHarness, stub) -> None:
    contact = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    _record(stub, contact.name)
    with pytest.raises(Exception, match="append-only"):
        harness.sql(
            "UPDATE marketing_consent SET granted = false WHERE contact_id = :id",
            id=contact.name.removeprefix("contacts/"),
        )


def test_subscribe_creates_contact_and_joins_newsletter(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    resp = stub.SubscribeNewsletter(
        pb.SubscribeNewsletterRequest(email=email, source="footer_form", ip_address="10.0.0.1")
    )
    assert resp.contact.email_opt_in and resp.contact.newsletter_member
    assert resp.consent.type == consent_pb2.CONSENT_TYPE_EMAIL and resp.consent.granted
    assert resp.consent.source == "footer_form"
    assert [row.kind for row in harness.outbox_rows(email)] == ["newsletter.subscribed"]


def test_unsubscribe_suppresses_and_revokes_everything(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    contact = stub.SubscribeNewsletter(
        pb.SubscribeNewsletterRequest(email=email, source="checkout")
    ).contact
    stub.UpsertContact(upsert(email, phone=unique_phone()))
    _record(stub, contact.name, type_name="SMS")
    assert stub.Unsubscribe(pb.UnsubscribeRequest(email=email, reason="too many")).changed
    got = stub.GetContact(pb.GetContactRequest(email=email)).contact
    assert got.suppressed
    assert not (got.email_opt_in or got.sms_opt_in or got.newsletter_member)
    before = harness.table_counts()
    assert not stub.Unsubscribe(pb.UnsubscribeRequest(email=email)).changed
    assert harness.table_counts() == before, "a repeated unsubscribe writes nothing"


def test_unsubscribe_unknown_address_is_still_suppressed(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    assert stub.Unsubscribe(pb.UnsubscribeRequest(email=email)).changed
    # A later subscription explicitly opts back in and lifts the suppression.
    resp = stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="form"))
    assert not resp.contact.suppressed and resp.contact.email_opt_in
    assert [row.kind for row in harness.outbox_rows(email)] == [
        "contact.unsubscribed",
        "newsletter.subscribed",
    ]


def test_subscribe_rejects_bad_input(stub, harness: ServiceHarness) -> None:
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as err:
        stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email="x@", source=""))
    assert field_violations(err.value) == {"email": "INVALID_EMAIL", "source": "REQUIRED"}
    with pytest.raises(grpc.RpcError) as err:
        stub.Unsubscribe(pb.UnsubscribeRequest(email=""))
    assert field_violations(err.value) == {"email": "REQUIRED"}
    assert harness.table_counts() == before


def test_consent_time_out_of_range_is_an_invalid_argument(stub, harness: ServiceHarness) -> None:
    contact = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as err:
        _record(stub, contact.name, consent_time=timestamp_pb2.Timestamp(nanos=1_000_000_000))
    assert field_violations(err.value) == {"consent.consent_time": "INVALID_TIMESTAMP"}
    assert harness.table_counts() == before
