"""ActiveCampaign bodies: field values never empty, event names within 32 characters, orders
and carts as ecomOrders in cents."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.providers.activecampaign import bodies
from dispatcher.providers.activecampaign.ecommerce import OrderKey, order_body
from dispatcher.providers.base import Profile, TrackedEvent
from dispatcher.providers.errors import PermanentProviderError

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def test_field_values_leave_out_what_would_erase_a_value() -> None:
    profile = Profile(
        email="ada@example.com",
        external_id="user-1",
        location="  ",
        properties={
            "tier": "gold",
            "blank": "",
            "unset": None,
            "count": 3,
            "vip": True,
            "tags": ["a", "b"],
            "ltv": 12.5,
        },
    )

    assert bodies.field_values(profile) == {
        "tier": "gold",
        "count": "3",
        "vip": "true",
        "tags": '["a","b"]',
        "ltv": "12.5",
        "external_id": "user-1",
    }


def test_a_profile_sync_names_fields_by_id_and_leaves_out_empty_names() -> None:
    profile = Profile(
        email="ada@example.com",
        first_name="Ada",
        last_name="",
        phone=None,
        properties={"tier": "gold"},
    )

    assert bodies.profile_sync(profile, {"tier": "7"}) == {
        "contact": {
            "email": "ada@example.com",
            "firstName": "Ada",
            "fieldValues": [{"field": "7", "value": "gold"}],
        }
    }


def test_an_import_contact_uses_snake_case_and_numeric_field_ids() -> None:
    profile = Profile(
        email="ada@example.com", last_name="Lovelace", phone="+44 20", properties={"tier": "gold"}
    )

    assert bodies.import_contact(profile, {"tier": "7"}) == {
        "email": "ada@example.com",
        "last_name": "Lovelace",
        "phone": "+44 20",
        "fields": [{"id": 7, "value": "gold"}],
    }


def test_short_event_names_are_sent_as_they_are() -> None:
    assert bodies.event_name("product_viewed") == "product_viewed"
    assert bodies.event_name("x" * 32) == "x" * 32


@given(st.text(min_size=33, max_size=200), st.text(min_size=33, max_size=200))
def test_long_event_names_fit_are_stable_and_stay_apart(first: str, second: str) -> None:
    name = bodies.event_name(first)

    assert len(name) == 32
    assert name == bodies.event_name(first)
    assert name.startswith(first[:23])
    if first != second:
        assert name != bodies.event_name(second)


def test_tracking_fields_carry_the_full_event_in_eventdata() -> None:
    metric = "a_custom_event_whose_name_is_far_too_long"
    event = TrackedEvent("ev-1", "ada@example.com", metric, WHEN, {"k": 1}, Decimal("9.50"), "EUR")

    form = bodies.tracking_fields(event)

    assert form["event"] == bodies.event_name(metric)
    assert form["visit"] == '{"email":"ada@example.com"}'
    assert form["eventdata"] == (
        '{"event_id":"ev-1","metric":"a_custom_event_whose_name_is_far_too_long",'
        '"time":"2026-11-02T09:30:00+00:00","properties":{"k":1},"value":"9.50","currency":"EUR"}'
    )


@pytest.mark.parametrize(
    ("amount", "expected"), [(12, 1200), ("9.99", 999), (0.1, 10), (Decimal("1.005"), 101)]
)
def test_amounts_become_whole_cents(amount: object, expected: int) -> None:
    assert bodies.cents(amount) == expected


@pytest.mark.parametrize("amount", ["soon", float("nan"), float("inf")])
def test_an_amount_that_is_no_number_is_refused(amount: object) -> None:
    with pytest.raises(PermanentProviderError):
        bodies.cents(amount)


def order_event(properties: dict[str, object], metric: str = "placed_order") -> TrackedEvent:
    return TrackedEvent("ev-9", "ada@example.com", metric, WHEN, properties, Decimal("24"), "eur")


def test_a_placed_order_is_an_ecom_order_keyed_by_the_order_id() -> None:
    order = {
        "order_id": "1001",
        "lines": [
            {
                "product_id": "mug-42",
                "title": "Mug",
                "quantity": 2,
                "unit_price": 12.0,
                "sku": "M42",
                "url": "https://shop/mug",
                "image_url": "https://shop/mug.png",
            },
            {"sku": "S1", "quantity": 1},
        ],
        "total": 24.0,
        "discount": 1.5,
        "shipping": 4.0,
    }

    key, body = order_body(order_event({"order": order}))

    assert key == OrderKey("externalid", "1001")
    assert body == {
        "email": "ada@example.com",
        "source": 1,
        "totalPrice": 2400,
        "currency": "EUR",
        "externalCreatedDate": "2026-11-02T09:30:00+00:00",
        "orderNumber": "1001",
        "externalid": "1001",
        "discountAmount": 150,
        "shippingAmount": 400,
        "orderProducts": [
            {
                "externalid": "mug-42",
                "name": "Mug",
                "price": 1200,
                "quantity": 2,
                "sku": "M42",
                "productUrl": "https://shop/mug",
                "imageUrl": "https://shop/mug.png",
            },
            {"externalid": "S1", "name": "S1", "price": 0, "quantity": 1, "sku": "S1"},
        ],
    }


def test_an_abandoned_cart_is_an_ecom_order_keyed_by_the_cart_id() -> None:
    cart = {
        "cart_id": "cart-7",
        "items": [{"product_id": "mug-42", "quantity": 1, "unit_price": 12.0}],
        "checkout_url": "https://shop/checkout/7",
        "last_activity_time": "2026-11-02T08:00:00Z",
    }

    key, body = order_body(order_event({"cart": cart}, "cart_abandoned"))

    assert key == OrderKey("externalcheckoutid", "cart-7")
    assert body["externalcheckoutid"] == "cart-7"
    assert "externalid" not in body
    assert body["abandoned_date"] == "2026-11-02T08:00:00Z"
    assert body["orderUrl"] == "https://shop/checkout/7"


def test_an_order_without_a_total_is_refused() -> None:
    event = TrackedEvent("ev-1", "ada@example.com", "placed_order", WHEN, {"order": {}})

    with pytest.raises(PermanentProviderError) as caught:
        order_body(event)

    assert caught.value.code == "no_total"
