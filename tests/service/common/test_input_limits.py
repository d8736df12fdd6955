"""Values PostgreSQL or the provider cannot hold are INVALID_ARGUMENT naming
the field, never INTERNAL, and the rejected call writes nothing."""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from marketing.v1 import event_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.timestamps import MAX_SECONDS

from service.common.validation import MAX_MONEY_UNITS, column_length
from service.contacts.rules import _TEXT_COLUMNS, MAX_PROFILE_BYTES
from service.storage.models import Contact
from tests.builders import cart_abandoned, consent, contact, money, placed_order, upsert
from tests.harness import ServiceHarness, field_violations, unique_email


def rejected(harness: ServiceHarness, call: Callable[[], Any]) -> dict[str, str]:
    """The call's violations, after checking it was INVALID_ARGUMENT and wrote nothing."""
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as raised:
        call()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert harness.table_counts() == before
    return field_violations(raised.value)


def custom_event(email: str, properties: dict[str, Any]) -> event_pb2.Event:
    event = event_pb2.Event(email=email, custom=event_pb2.CustomEvent(name="signed_up"))
    event.custom.properties.update(properties)
    return event


# ---------------------------------------------------------------- NaN and infinity


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_custom_property_is_refused(harness: ServiceHarness, number: float) -> None:
    request = upsert(unique_email())
    request.contact.custom_properties.update({"ok": 1, "scores": {"list": [1, number]}})
    found = rejected(harness, lambda: harness.stub.UpsertContact(request))
    assert found == {"contact.custom_properties.scores.list[1]": "NOT_FINITE"}


def test_a_non_finite_event_property_is_refused(harness: ServiceHarness) -> None:
    email = unique_email()
    one = custom_event(email, {"score": float("nan")})
    found = rejected(harness, lambda: harness.stub.TrackEvent(pb.TrackEventRequest(event=one)))
    assert found == {"event.custom.properties.score": "NOT_FINITE"}
    batch = [custom_event(email, {"a": 1}), custom_event(email, {"b": [float("inf")]})]
    found = rejected(harness, lambda: harness.stub.TrackEvents(pb.TrackEventsRequest(events=batch)))
    assert found == {"events[1].custom.properties.b[0]": "NOT_FINITE"}


# ---------------------------------------------------------------- timestamps at any depth


@pytest.mark.parametrize(
    "bad",
    [
        timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=-1),
        timestamp_pb2.Timestamp(seconds=MAX_SECONDS + 1),
        timestamp_pb2.Timestamp(seconds=-62_135_596_801),
    ],
)
def test_an_out_of_range_timestamp_inside_a_payload_is_refused(
    harness: ServiceHarness, bad: timestamp_pb2.Timestamp
) -> None:
    event = cart_abandoned(unique_email())
    event.cart_abandoned.cart.last_activity_time.CopyFrom(bad)
    found = rejected(harness, lambda: harness.stub.TrackEvent(pb.TrackEventRequest(event=event)))
    assert found == {"event.cart_abandoned.cart.last_activity_time": "INVALID_TIMESTAMP"}
    batch = pb.TrackEventsRequest(events=[cart_abandoned(unique_email()), event])
    found = rejected(harness, lambda: harness.stub.TrackEvents(batch))
    assert found == {"events[1].cart_abandoned.cart.last_activity_time": "INVALID_TIMESTAMP"}


def test_an_in_range_timestamp_inside_a_payload_is_kept(harness: ServiceHarness) -> None:
    event = cart_abandoned(unique_email(), event_id=f"ts-{unique_email()}")
    event.cart_abandoned.cart.last_activity_time.CopyFrom(timestamp_pb2.Timestamp(seconds=0))
    harness.stub.TrackEvent(pb.TrackEventRequest(event=event))
    data = harness.scalar("SELECT data FROM marketing_event_log WHERE id = :id", id=event.event_id)
    assert data["payload"]["cart"]["last_activity_time"] == "1970-01-01T00:00:00Z"


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize("units", [MAX_MONEY_UNITS + 1, 2**63 - 1])
def test_a_lifetime_value_beyond_its_column_is_refused(harness: ServiceHarness, units: int) -> None:
    request = upsert(unique_email(), lifetime_value=money(units))
    found = rejected(harness, lambda: harness.stub.UpsertContact(request))
    assert found == {"contact.lifetime_value.units": "OUT_OF_RANGE"}


def test_the_largest_lifetime_value_is_stored_exactly(harness: ServiceHarness) -> None:
    email = unique_email()
    largest = money(MAX_MONEY_UNITS, nanos=999_999_999)
    reply = harness.stub.UpsertContact(upsert(email, lifetime_value=largest))
    assert reply.contact.lifetime_value == largest
    stored = harness.scalar(
        "SELECT lifetime_value FROM marketing_contact WHERE email = :e", e=email
    )
    assert stored == Decimal("99999999999.999999999")


def test_an_event_amount_beyond_eleven_digits_is_refused(harness: ServiceHarness) -> None:
    event = placed_order(unique_email())
    event.placed_order.order.total.units = MAX_MONEY_UNITS + 1
    found = rejected(harness, lambda: harness.stub.TrackEvent(pb.TrackEventRequest(event=event)))
    assert found == {"event.placed_order.order.total.units": "OUT_OF_RANGE"}


# ---------------------------------------------------------------- strings and columns


@pytest.mark.parametrize("ip", ["fe80::1%" + "eth" * 20, "fe80::1%\x00"])
def test_an_ip_address_that_its_column_cannot_hold_is_refused(
    harness: ServiceHarness, ip: str
) -> None:
    name = harness.stub.UpsertContact(upsert(unique_email())).contact.name
    record = pb.RecordConsentRequest(parent=name, consent=consent(ip_address=ip))
    found = rejected(harness, lambda: harness.stub.RecordConsent(record))
    assert set(found) == {"consent.ip_address"}
    subscribe = pb.SubscribeNewsletterRequest(email=unique_email(), source="footer", ip_address=ip)
    found = rejected(harness, lambda: harness.stub.SubscribeNewsletter(subscribe))
    assert set(found) == {"ip_address"}


@pytest.mark.parametrize("name", _TEXT_COLUMNS)
def test_every_contact_text_longer_than_its_column_is_refused(
    harness: ServiceHarness, name: str
) -> None:
    too_long = "a" * (column_length(getattr(Contact, name)) + 1)
    request = upsert(unique_email(), **{name: too_long})
    found = rejected(harness, lambda: harness.stub.UpsertContact(request))
    assert set(found) == {f"contact.{name}"}


def nul_requests(email: str, name: str) -> list[tuple[str, Any, str]]:
    """(method, request, the field holding the NUL) for every text field."""
    nul = "a\x00b"
    requests: list[tuple[str, Any, str]] = [
        ("UpsertContact", upsert(email, **{f: nul}), f"contact.{f}") for f in _TEXT_COLUMNS
    ]
    for f in ("source", "ip_address", "user_agent"):
        record = pb.RecordConsentRequest(parent=name, consent=consent())
        setattr(record.consent, f, nul)
        subscribe = pb.SubscribeNewsletterRequest(email=email, source="footer")
        setattr(subscribe, f, nul)
        requests += [
            ("RecordConsent", record, f"consent.{f}"),
            ("SubscribeNewsletter", subscribe, f),
        ]
    return [
        *requests,
        ("UpsertContact", pb.UpsertContactRequest(contact=contact(nul)), "contact.email"),
        ("GetContact", pb.GetContactRequest(email=nul), "email"),
        ("GetContact", pb.GetContactRequest(name=nul), "name"),
        ("DeleteContact", pb.DeleteContactRequest(name=nul), "name"),
        ("Unsubscribe", pb.UnsubscribeRequest(email=nul), "email"),
        ("Unsubscribe", pb.UnsubscribeRequest(email=email, reason=nul), "reason"),
        ("ListContacts", pb.ListContactsRequest(page_token=nul), "page_token"),
        ("RetryFailedDeliveries", pb.RetryFailedDeliveriesRequest(names=[nul]), "names[0]"),
        ("RecordConsent", pb.RecordConsentRequest(parent=nul, consent=consent()), "parent"),
    ]


def test_a_nul_in_any_text_field_is_refused_naming_it(harness: ServiceHarness) -> None:
    email = unique_email()
    name = harness.stub.UpsertContact(upsert(email)).contact.name
    for method, request, field in nul_requests(email, name):
        call = functools.partial(getattr(harness.stub, method), request)
        found = rejected(harness, call)
        assert field in found, (method, field, found)


def test_a_nul_in_a_custom_property_or_event_field_is_refused(harness: ServiceHarness) -> None:
    request = upsert(unique_email())
    request.contact.custom_properties.update({"note": "a\x00b"})
    found = rejected(harness, lambda: harness.stub.UpsertContact(request))
    assert set(found) == {"contact.custom_properties"}
    event = custom_event(unique_email(), {"k\x00": 1})
    found = rejected(harness, lambda: harness.stub.TrackEvent(pb.TrackEventRequest(event=event)))
    assert "event.custom.properties" in found
    order = placed_order(unique_email())
    order.placed_order.order.coupon_codes.append("SAVE\x0010")
    found = rejected(harness, lambda: harness.stub.TrackEvent(pb.TrackEventRequest(event=order)))
    assert set(found) == {"event.placed_order"}


# ---------------------------------------------------------------- what the provider refuses


def test_an_empty_phone_is_refused_and_an_absent_one_keeps_the_stored(
    harness: ServiceHarness,
) -> None:
    email = unique_email()
    harness.stub.UpsertContact(upsert(email, phone="+4915112345678"))
    found = rejected(harness, lambda: harness.stub.UpsertContact(upsert(email, phone="")))
    assert found == {"contact.phone": "INVALID_PHONE"}
    reply = harness.stub.UpsertContact(upsert(email, last_name="Lovelace"))
    assert reply.contact.phone == "+4915112345678"


def test_a_contact_larger_than_the_providers_profile_limit_is_refused(
    harness: ServiceHarness,
) -> None:
    request = upsert(unique_email())
    request.contact.custom_properties.update({"notes": "x" * 100 * 1024})
    found = rejected(harness, lambda: harness.stub.UpsertContact(request))
    assert found == {"contact.custom_properties": "PROFILE_TOO_LARGE"}


def test_custom_properties_that_grow_past_the_limit_over_upserts_are_refused(
    harness: ServiceHarness,
) -> None:
    email = unique_email()
    half = "x" * (MAX_PROFILE_BYTES // 2)
    first = upsert(email)
    first.contact.custom_properties.update({"a": half})
    harness.stub.UpsertContact(first)
    second = pb.UpsertContactRequest(contact=contact(email))
    second.contact.custom_properties.update({"b": half})
    found = rejected(harness, lambda: harness.stub.UpsertContact(second))
    assert found == {"contact.custom_properties": "PROFILE_TOO_LARGE"}
    # Replacing the big property instead of adding one fits.
    third = pb.UpsertContactRequest(contact=contact(email))
    third.contact.custom_properties.update({"a": None, "b": half})
    reply = harness.stub.UpsertContact(third)
    assert set(reply.contact.custom_properties.keys()) == {"b"}
