"""Contacts over gRPC against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2
from marketing.v1 import service_pb2 as pb

from tests.builders import money, placed_order, ts, upsert
from tests.harness import ServiceHarness, error_reason, field_violations, unique_email


def test_upsert_creates_then_updates(stub) -> None:
    email = unique_email()
    first = stub.UpsertContact(upsert(email, last_name="Lovelace", language="en-GB"))
    assert first.created
    assert first.contact.name.startswith("contacts/")
    second = stub.UpsertContact(upsert(email.upper(), loyalty_tier="gold"))
    assert not second.created
    assert second.contact.name == first.contact.name
    assert second.contact.loyalty_tier == "gold"
    assert second.contact.last_name == "Lovelace", "unset fields keep their stored value"
    assert second.contact.language == "en-GB"


def test_upsert_stores_every_property(stub) -> None:
    email = unique_email()
    registered = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    request = upsert(
        email,
        user_id=f"user-{email}",
        last_name="Lovelace",
        phone="+4915112345678",
        registration_time=ts(registered),
        loyalty_tier="silver",
        lifetime_value=money(1234, nanos=500_000_000),
        order_count=7,
        last_purchase_time=ts(registered + timedelta(days=3)),
        location="London, GB",
        language="en-GB",
        timezone="Europe/London",
    )
    request.contact.custom_properties.update({"favourite_colour": "green", "vip": True})
    stub.UpsertContact(request)
    got = stub.GetContact(pb.GetContactRequest(email=email)).contact
    assert got.phone == "+4915112345678"
    assert got.registration_time.ToDatetime(tzinfo=UTC) == registered
    assert (got.lifetime_value.units, got.lifetime_value.nanos) == (1234, 500_000_000)
    assert got.lifetime_value.currency_code == "EUR"
    assert got.order_count == 7
    assert got.timezone == "Europe/London"
    assert dict(got.custom_properties) == {"favourite_colour": "green", "vip": True}
    assert not (got.email_opt_in or got.sms_opt_in or got.push_opt_in), "consent never assumed"


def test_custom_properties_merge_and_null_removes(stub) -> None:
    email = unique_email()
    first = upsert(email)
    first.contact.custom_properties.update({"a": 1, "b": "x"})
    stub.UpsertContact(first)
    second = upsert(email)
    second.contact.custom_properties.update({"b": None, "c": "y"})
    got = stub.UpsertContact(second).contact
    assert dict(got.custom_properties) == {"a": 1, "c": "y"}


def test_get_by_name_and_not_found(stub) -> None:
    created = stub.UpsertContact(upsert(unique_email())).contact
    assert stub.GetContact(pb.GetContactRequest(name=created.name)).contact.email == created.email
    missing = "contacts/00000000-0000-4000-8000-000000000000"
    with pytest.raises(grpc.RpcError) as err:
        stub.GetContact(pb.GetContactRequest(name=missing))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(err.value) == "CONTACT_NOT_FOUND"
    with pytest.raises(grpc.RpcError) as err:
        stub.GetContact(pb.GetContactRequest(email=unique_email()))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.GetContactRequest(), "name"),
        (pb.GetContactRequest(name="people/1"), "name"),
        (pb.GetContactRequest(email="not-an-email"), "email"),
    ],
)
def test_get_rejects_bad_lookups(stub, request_, field) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetContact(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(err.value)


def test_upsert_rejects_every_bad_field_at_once(stub, harness: ServiceHarness) -> None:
    before = harness.table_counts()
    request = upsert(
        "not-an-email",
        first_name="",
        phone="0151 123",
        timezone="Mars/Olympus",
        language="english please",
        order_count=-1,
        lifetime_value=money(5, currency="eur"),
        registration_time=ts(datetime.now(UTC) + timedelta(days=1)),
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.UpsertContact(request)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == {
        "contact.email": "INVALID_EMAIL",
        "contact.phone": "INVALID_PHONE",
        "contact.timezone": "INVALID_TIMEZONE",
        "contact.language": "INVALID_LANGUAGE",
        "contact.order_count": "OUT_OF_RANGE",
        "contact.lifetime_value.currency_code": "INVALID_CURRENCY",
        "contact.registration_time": "TIMESTAMP_IN_FUTURE",
    }
    assert error_reason(err.value) == "INVALID_FIELDS"
    assert harness.table_counts() == before


def test_new_contact_needs_a_first_name(stub, harness: ServiceHarness) -> None:
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as err:
        stub.UpsertContact(upsert(unique_email(), first_name=""))
    assert field_violations(err.value) == {"contact.first_name": "REQUIRED"}
    assert harness.table_counts() == before


def test_user_id_belongs_to_one_contact(stub, harness: ServiceHarness) -> None:
    user_id = f"user-{unique_email()}"
    stub.UpsertContact(upsert(unique_email(), user_id=user_id))
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as err:
        stub.UpsertContact(upsert(unique_email(), user_id=user_id))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert field_violations(err.value) == {"contact.user_id": "ALREADY_EXISTS"}
    assert harness.table_counts() == before


def test_list_contacts_pages_through_everything(stub) -> None:
    mine = {stub.UpsertContact(upsert(unique_email("page"))).contact.name for _ in range(7)}
    seen: list[str] = []
    token = ""
    while True:
        page = stub.ListContacts(pb.ListContactsRequest(page_size=3, page_token=token))
        assert len(page.contacts) <= 3
        seen.extend(c.name for c in page.contacts)
        token = page.next_page_token
        if not token:
            break
    assert mine <= set(seen)
    assert len(seen) == len(set(seen)), "no contact appears twice"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListContactsRequest(page_size=-1), "page_size"),
        (pb.ListContactsRequest(page_token="garbage!"), "page_token"),
        (pb.ListContactsRequest(page_token="eyJzIjoieCIsImMiOnt9fQ"), "page_token"),
    ],
)
def test_list_contacts_rejects_bad_paging(stub, request_, field) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.ListContacts(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(err.value)


def test_delete_erases_personal_data(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    contact = stub.UpsertContact(upsert(email)).contact
    stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="footer"))
    stub.TrackEvent(pb.TrackEventRequest(event=placed_order(email)))
    stub.Unsubscribe(pb.UnsubscribeRequest(email=email, reason="moving away"))
    stub.DeleteContact(pb.DeleteContactRequest(name=contact.name))

    with pytest.raises(grpc.RpcError) as err:
        stub.GetContact(pb.GetContactRequest(email=email))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    contact_id = contact.name.removeprefix("contacts/")
    for table in ("marketing_consent", "marketing_segment_membership", "marketing_event_log"):
        assert (
            harness.scalar(f"SELECT count(*) FROM {table} WHERE contact_id = :id", id=contact_id)
            == 0
        )
    # Nothing anywhere still holds the address, except the erasure request itself
    # (a payload holds strings as their UTF-8 bytes).
    leftovers = harness.sql(
        "SELECT kind FROM marketing_outbox "
        "WHERE position(convert_to(:email, 'UTF8') in payload) > 0",
        email=email,
    )
    assert [row.kind for row in leftovers] == ["contact.erased"]
    assert (
        harness.scalar(
            "SELECT count(*) FROM marketing_event_log WHERE data::text LIKE :p", p=f"%{email}%"
        )
        == 0
    )
    # What the law requires us to keep: the suppression (hashed) and proof of erasure.
    from service.common.validation import email_key

    key = email_key(email)
    assert (
        harness.scalar("SELECT count(*) FROM marketing_suppression WHERE email_sha256 = :k", k=key)
        == 1
    )
    assert (
        harness.scalar("SELECT count(*) FROM marketing_erasure_log WHERE email_sha256 = :k", k=key)
        == 1
    )


def test_delete_missing_contact_is_not_found(stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.DeleteContact(
            pb.DeleteContactRequest(name="contacts/00000000-0000-4000-8000-000000000000")
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_timestamps_out_of_range_are_invalid_arguments(stub, harness: ServiceHarness) -> None:
    before = harness.table_counts()
    too_late = timestamp_pb2.Timestamp(seconds=253_402_300_800)
    with pytest.raises(grpc.RpcError) as err:
        stub.UpsertContact(upsert(unique_email(), last_purchase_time=too_late))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == {"contact.last_purchase_time": "INVALID_TIMESTAMP"}
    assert harness.table_counts() == before
