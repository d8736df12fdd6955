"""SMS consent and the SMS suppression list, against the real server and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.v1 import consent_pb2
from marketing.v1 import service_pb2 as pb

from service.consent.rules import may_send_marketing
from service.sms.suppression import phone_key
from service.storage.models import ConsentType
from tests.builders import consent, ts, upsert
from tests.harness import ServiceHarness, field_violations, unique_email, unique_phone


def _suppressed(harness: ServiceHarness, phone: str) -> bool:
    return bool(
        harness.scalar(
            "SELECT count(*) FROM marketing_sms_suppression WHERE phone_sha256 = :key",
            key=phone_key(phone),
        )
    )


def _grant(stub, parent: str, **fields) -> consent_pb2.Consent:
    return stub.RecordConsent(
        pb.RecordConsentRequest(parent=parent, consent=consent("SMS", True, **fields))
    ).consent


def test_an_sms_grant_is_provable(stub) -> None:
    phone = unique_phone()
    contact = stub.UpsertContact(upsert(unique_email(), phone=phone)).contact
    record = _grant(
        stub, contact.name, ip_address="203.0.113.7", wording_version="sms-terms-2026-10"
    )
    assert (record.phone_number, record.wording_version) == (phone, "sms-terms-2026-10")
    assert (record.source, record.ip_address) == ("preferences", "203.0.113.7")
    (stored,) = stub.ListConsents(pb.ListConsentsRequest(parent=contact.name)).consents
    assert stored == record


def test_an_sms_grant_without_the_wording_is_refused(stub, harness: ServiceHarness) -> None:
    contact = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as caught:
        _grant(stub, contact.name, wording_version="")
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {"consent.wording_version": "REQUIRED"}
    assert harness.table_counts() == before


def test_sms_consent_needs_the_contacts_own_number(stub, harness: ServiceHarness) -> None:
    without = stub.UpsertContact(upsert(unique_email())).contact
    with_phone = stub.UpsertContact(upsert(unique_email(), phone=unique_phone())).contact
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as caught:
        _grant(stub, without.name)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as caught:
        _grant(stub, with_phone.name, phone_number=unique_phone())
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {"consent.phone_number": "PHONE_MISMATCH"}
    with pytest.raises(grpc.RpcError) as caught:
        stub.RecordConsent(
            pb.RecordConsentRequest(
                parent=with_phone.name, consent=consent("EMAIL", phone_number=unique_phone())
            )
        )
    assert field_violations(caught.value) == {"consent.phone_number": "NOT_FOR_THIS_TYPE"}
    assert harness.table_counts() == before


def test_opt_out_of_a_number_no_contact_has(stub, harness: ServiceHarness) -> None:
    phone = unique_phone()
    reply = stub.OptOutSms(pb.OptOutSmsRequest(phone_number=phone, source="sms_stop"))
    assert reply.changed and not reply.contacts
    assert _suppressed(harness, phone)
    assert not stub.OptOutSms(pb.OptOutSmsRequest(phone_number=phone, source="sms_stop")).changed


def test_opt_out_validates_its_request(stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.OptOutSms(pb.OptOutSmsRequest(phone_number="015112345678"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {
        "phone_number": "INVALID_PHONE",
        "source": "REQUIRED",
    }


def test_opt_out_withdraws_every_holder_of_the_number(stub, harness: ServiceHarness) -> None:
    phone = unique_phone()
    a = stub.UpsertContact(upsert(unique_email(), phone=phone)).contact
    b = stub.UpsertContact(upsert(unique_email(), phone=phone)).contact
    _grant(stub, a.name)
    _grant(stub, b.name)
    reply = stub.OptOutSms(pb.OptOutSmsRequest(phone_number=phone, source="sms_stop"))
    assert reply.changed and sorted(reply.contacts) == sorted([a.name, b.name])
    for c in (a, b):
        got = stub.GetContact(pb.GetContactRequest(name=c.name)).contact
        assert not got.sms_opt_in
        newest = stub.ListConsents(pb.ListConsentsRequest(parent=c.name)).consents[0]
        assert (newest.granted, newest.source, newest.phone_number) == (False, "sms_stop", phone)
        sent = harness.outbox_rows(c.email, "consent.changed")[-1].payload
        assert not sent.state.opt_in.sms and sent.state.phone == phone
    assert _suppressed(harness, phone)


# The actions that change a number's SMS standing, as the model sees them.
ACTIONS = st.lists(
    st.sampled_from(["grant", "withdraw", "opt_out", "unsubscribe_all"]), min_size=1, max_size=8
)


# **Feature: marketing-automation, Property 23: SMS opt-out immediate**
@settings(max_examples=100, deadline=None)
@given(actions=ACTIONS)
def test_property_23_an_sms_opt_out_suppresses_the_number_at_once(
    stub, harness: ServiceHarness, actions: list[str]
) -> None:
    email, phone = unique_email(), unique_phone()
    parent = stub.UpsertContact(upsert(email, phone=phone)).contact.name
    suppressed = False
    for action in actions:
        if action == "grant":
            _grant(stub, parent)
            suppressed = False  # only an explicit grant, with its wording, lifts it
        elif action == "withdraw":  # an opt-out, whether or not SMS consent was on file
            stub.RecordConsent(
                pb.RecordConsentRequest(parent=parent, consent=consent("SMS", False))
            )
            suppressed = True
        elif action == "opt_out":
            stub.OptOutSms(pb.OptOutSmsRequest(phone_number=phone, source="sms_stop"))
            suppressed = True
        else:
            was_granted = stub.GetContact(pb.GetContactRequest(name=parent)).contact.sms_opt_in
            stub.Unsubscribe(pb.UnsubscribeRequest(email=email))
            # Withdraws SMS consent where there was some (and suppresses the
            # address, so that no channel reaches the person).
            suppressed = suppressed or was_granted
        # Checked as each call returns: "at once" is the call's own transaction.
        assert _suppressed(harness, phone) == suppressed, action
        may_text = harness.run(may_send_marketing(harness.db, email=email, channel=ConsentType.SMS))
        assert not (may_text and suppressed)


def test_a_new_phone_ends_the_sms_consent_of_the_old_one(stub, harness: ServiceHarness) -> None:
    email, old, new = unique_email(), unique_phone(), unique_phone()
    contact = stub.UpsertContact(upsert(email, phone=old)).contact
    _grant(stub, contact.name)
    stub.UpsertContact(upsert(email, phone=new))
    got = stub.GetContact(pb.GetContactRequest(name=contact.name)).contact
    assert not got.sms_opt_in
    newest = stub.ListConsents(pb.ListConsentsRequest(parent=contact.name)).consents[0]
    assert (newest.granted, newest.source, newest.phone_number) == (False, "phone_changed", old)
    assert not _suppressed(harness, old) and not _suppressed(harness, new)
    record = _grant(stub, contact.name)  # the new number needs a consent of its own
    assert record.phone_number == new


def test_a_grant_dated_before_the_opt_out_does_not_lift_it(stub, harness: ServiceHarness) -> None:
    phone = unique_phone()
    contact = stub.UpsertContact(upsert(unique_email(), phone=phone)).contact
    stub.OptOutSms(pb.OptOutSmsRequest(phone_number=phone, source="sms_stop"))
    earlier = ts(datetime.now(UTC) - timedelta(days=1))
    _grant(stub, contact.name, consent_time=earlier)  # a late report of an older opt-in
    assert _suppressed(harness, phone)
    _grant(stub, contact.name)  # an opt-in now
    assert not _suppressed(harness, phone)
