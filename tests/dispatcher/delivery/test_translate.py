"""Bus payloads (built here from the JSON form of earlier releases) to
provider value types."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime.kinds import Kind
from marketing_runtime.legacy import payload_from_json

from dispatcher.delivery.translate import consent_state, profile, tracked_event
from tests.bus_helpers import delivery


def _delivery(kind: Kind, doc: dict[str, Any]) -> bus_pb2.Delivery:
    """The Delivery the relay publishes for an outbox row holding `doc`."""
    return delivery(
        id="d",
        kind=kind,
        contact_key="k",
        sequence=1,
        payload=payload_from_json(kind, doc),
        created=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_order_value_comes_from_the_total() -> None:
    event = tracked_event(
        _delivery(
            bus_pb2.KIND_EVENT_TRACKED,
            {
                "event_id": "e1",
                "metric": "placed_order",
                "email": "a@b.co",
                "occur_time": "2026-01-01T10:00:00+00:00",
                "properties": {
                    "order": {
                        "order_id": "o1",
                        "total": {"currency_code": "EUR", "units": "24", "nanos": 500000000},
                        "lines": [
                            {
                                "product_id": "p",
                                "quantity": 2,
                                "unit_price": {"currency_code": "EUR", "units": "12"},
                            }
                        ],
                    }
                },
            },
        )
    )
    assert (event.value, event.value_currency) == (Decimal("24.5"), "EUR")
    assert event.properties["order"]["lines"][0]["unit_price"] == 12.0
    assert event.event_id == "e1" and event.metric == "placed_order"


def test_custom_event_keeps_its_own_properties_and_value() -> None:
    event = tracked_event(
        _delivery(
            bus_pb2.KIND_EVENT_TRACKED,
            {
                "event_id": "e2",
                "metric": "review_submitted",
                "email": "a@b.co",
                "occur_time": "2026-01-01T10:00:00+00:00",
                "properties": {
                    "name": "review_submitted",
                    "properties": {"stars": 5},
                    "value": {"currency_code": "USD", "units": "3"},
                },
            },
        )
    )
    assert event.properties == {"stars": 5}
    assert (event.value, event.value_currency) == (Decimal(3), "USD")


def test_product_view_has_no_value() -> None:
    event = tracked_event(
        _delivery(
            bus_pb2.KIND_EVENT_TRACKED,
            {
                "event_id": "e3",
                "metric": "product_viewed",
                "email": "a@b.co",
                "occur_time": "2026-01-01T10:00:00+00:00",
                "properties": {"product": {"product_id": "p", "price": {"currency_code": "EUR"}}},
            },
        )
    )
    assert event.value is None
    assert event.properties == {"product": {"product_id": "p", "price": 0.0}}


def test_custom_properties_are_free_form_even_when_they_look_like_money() -> None:
    event = tracked_event(
        _delivery(
            bus_pb2.KIND_EVENT_TRACKED,
            {
                "event_id": "e4",
                "metric": "note_taken",
                "email": "a@b.co",
                "occur_time": "2026-01-01T10:00:00+00:00",
                "properties": {
                    "name": "note_taken",
                    "properties": {"tip": {"currency_code": "EUR", "units": 1}},
                },
            },
        )
    )
    assert event.properties == {"tip": {"currency_code": "EUR", "units": 1}}
    assert event.value is None


def test_profile_maps_identity_and_properties() -> None:
    p = profile(
        _delivery(
            bus_pb2.KIND_CONTACT_UPSERTED,
            {
                "contact_id": "c",
                "email": "a@b.co",
                "user_id": "u1",
                "first_name": "Ada",
                "last_name": None,
                "phone": "+4915112345678",
                "location": "Berlin",
                "lifetime_value": "12.500000000",
                "order_count": 3,
                "language": "de",
                "custom_properties": {"vip": True},
            },
        )
    )
    assert (p.email, p.external_id, p.first_name, p.last_name) == ("a@b.co", "u1", "Ada", None)
    assert p.properties == {"lifetime_value": 12.5, "order_count": 3, "language": "de", "vip": True}


def test_consent_state_never_assumes_sms_without_a_phone() -> None:
    state = consent_state(
        _delivery(
            bus_pb2.KIND_CONSENT_CHANGED,
            {
                "email": "a@b.co",
                "phone": None,
                "opt_in": {"email": True, "sms": True},
                "newsletter_member": True,
            },
        )
    )
    assert state.change.email_marketing is True
    assert state.change.sms_marketing is None
    assert state.newsletter_member and not state.suppressed


def test_a_reader_refuses_a_delivery_of_another_kind() -> None:
    erased = _delivery(bus_pb2.KIND_CONTACT_ERASED, {"email": "a@b.co"})
    with pytest.raises(ValueError, match=r"event\.tracked"):
        tracked_event(erased)
    with pytest.raises(ValueError):
        consent_state(erased)
    with pytest.raises(ValueError):
        profile(bus_pb2.Delivery(type=bus_pb2.KIND_CONTACT_UPSERTED))  # no payload


def test_profile_times_and_exact_lifetime_value() -> None:
    p = profile(
        _delivery(
            bus_pb2.KIND_CONTACT_UPSERTED,
            {
                "email": "a@b.co",
                "registration_time": "2025-03-04T05:06:07.123456+00:00",
                "lifetime_value": "-0.000000001",
                "lifetime_value_currency": "EUR",
                "custom_properties": {},
            },
        )
    )
    assert p.properties == {
        "registration_time": "2025-03-04T05:06:07.123456+00:00",
        "lifetime_value": -1e-9,
        "lifetime_value_currency": "EUR",
    }
