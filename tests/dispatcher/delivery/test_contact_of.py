"""`translate.contact_of` reads a profile back into the ContactUpserted fields it was
sent from: the read-back a reconcile compares is exactly what the upsert sent."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from marketing.bus.v1 import bus_pb2

from dispatcher.delivery.translate import contact_of, profile
from dispatcher.providers.base import Profile
from tests.bus_helpers import delivery
from tests.contact_strategies import contacts

EMAIL = "ada@example.com"


def _profile_of(contact: bus_pb2.ContactUpserted) -> Profile:
    return profile(
        delivery(
            id="d",
            kind=bus_pb2.KIND_CONTACT_UPSERTED,
            contact_key="k",
            sequence=1,
            payload=contact,
            created=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )


@given(contact=contacts(EMAIL))
def test_a_profile_read_back_is_the_profile_sent(contact: bus_pb2.ContactUpserted) -> None:
    sent = _profile_of(contact)
    assert _profile_of(contact_of(sent)) == sent


def test_typed_properties_go_back_to_their_fields() -> None:
    read = contact_of(
        Profile(
            email=EMAIL,
            external_id="u1",
            first_name="Ada",
            location="Leeds",
            properties={
                "order_count": 3,
                "lifetime_value": 19.99,
                "lifetime_value_currency": "EUR",
                "registration_time": "2026-01-02T03:04:05",  # no offset: UTC
                "vip": True,
            },
        )
    )
    assert (read.user_id, read.first_name, read.location, read.order_count) == (
        "u1",
        "Ada",
        "Leeds",
        3,
    )
    assert (read.lifetime_value.units, read.lifetime_value.nanos) == (19, 990_000_000)
    assert read.lifetime_value.currency_code == "EUR"
    assert read.registration_time.ToDatetime(tzinfo=UTC) == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert orjson.loads(read.custom_properties_json) == {"vip": True}


def test_a_typed_property_of_the_wrong_type_stays_a_custom_property() -> None:
    read = contact_of(
        Profile(
            email=EMAIL,
            properties={
                "order_count": "many",
                "registration_time": "soon",
                "lifetime_value": 1e300,
            },
        )
    )
    assert not read.HasField("order_count") and not read.HasField("registration_time")
    assert not read.HasField("lifetime_value")
    assert orjson.loads(read.custom_properties_json) == {
        "order_count": "many",
        "registration_time": "soon",
        "lifetime_value": 1e300,
    }
