"""Events through event tracking, placed orders and abandoned carts as e-commerce orders,
against the sandbox: one event per call, ids created once, nothing written twice."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dispatcher.providers.activecampaign import bodies
from dispatcher.providers.activecampaign.client import ActiveCampaignClient
from dispatcher.providers.base import TrackedEvent
from dispatcher.providers.errors import PermanentProviderError
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.providers.activecampaign.conftest import api, paths, with_client

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def viewed(event_id: str, metric: str = "product_viewed") -> TrackedEvent:
    return TrackedEvent(event_id, "ada@example.com", metric, WHEN, {"product": {"sku": "M42"}})


def order(event_id: str, order_id: str, email: str = "ada@example.com") -> TrackedEvent:
    properties = {
        "order": {
            "order_id": order_id,
            "lines": [{"product_id": "mug-42", "title": "Mug", "quantity": 2, "unit_price": 12.0}],
            "total": 24.0,
        }
    }
    return TrackedEvent(event_id, email, "placed_order", WHEN, properties, Decimal(24), "EUR")


def cart(event_id: str, cart_id: str) -> TrackedEvent:
    properties = {
        "cart": {
            "cart_id": cart_id,
            "items": [{"product_id": "mug-42", "quantity": 1, "unit_price": 12.0}],
            "checkout_url": "https://shop.example/checkout/7",
        }
    }
    return TrackedEvent(
        event_id, "ada@example.com", "cart_abandoned", WHEN, properties, Decimal(12), "EUR"
    )


async def send(client: ActiveCampaignClient, *events: TrackedEvent) -> None:
    """Each event in a call of its own, prepared as the events worker prepares it."""
    for event in events:
        await client.create_events([client.prepare_event(event)])


def test_an_event_is_tracked_once_tracking_is_switched_on(ac: ActiveCampaignSandbox) -> None:
    long_name = "a_custom_event_with_a_much_too_long_name"

    with_client(ac, lambda c: send(c, viewed("ev-1"), viewed("ev-2", long_name)))

    tracked = ac.view("events")
    assert [e["event"] for e in tracked] == ["product_viewed", bodies.event_name(long_name)]
    assert json.loads(tracked[1]["eventdata"])["metric"] == long_name
    assert tracked[0]["email"] == "ada@example.com"
    assert paths(ac) == [
        "GET /api/3/eventTracking",
        "PUT /api/3/eventTracking",
        "POST /event",
        "POST /event",
    ]


def test_a_key_that_may_not_switch_tracking_on_still_tracks(ac: ActiveCampaignSandbox) -> None:
    api(ac, "PUT", "/eventTracking", {"eventTracking": {"enabled": True}})
    ac.add_fault(path="/api/3/eventTracking", status=403, detail="Forbidden")

    with_client(ac, lambda c: send(c, viewed("ev-1")))

    assert len(ac.view("events")) == 1


def test_an_event_accepted_before_is_not_sent_again(ac: ActiveCampaignSandbox) -> None:
    with_client(ac, lambda c: send(c, viewed("ev-1"), viewed("ev-1")))

    assert len(ac.view("events")) == 1


def test_more_than_one_event_in_a_call_is_a_caller_bug(ac: ActiveCampaignSandbox) -> None:
    async def two(client: ActiveCampaignClient) -> None:
        await client.create_events([client.prepare_event(viewed(i)) for i in ("a", "b")])

    with pytest.raises(ValueError, match="takes one"):
        with_client(ac, two)
    assert paths(ac) == []


def test_a_refused_tracking_call_is_permanent(ac: ActiveCampaignSandbox) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        with_client(ac, lambda c: send(c, viewed("ev-1")), event_key="wrong")

    assert caught.value.code == "tracking_refused"
    assert "Invalid actid or key" in str(caught.value)


def test_orders_are_ecom_orders_with_the_connection_and_customer_made_once(
    ac: ActiveCampaignSandbox,
) -> None:
    with_client(ac, lambda c: send(c, order("ev-1", "1001"), order("ev-2", "1002")))

    orders = ac.view("orders")
    assert [(o["externalid"], o["totalPrice"], o["currency"]) for o in orders] == [
        ("1001", 2400, "EUR"),
        ("1002", 2400, "EUR"),
    ]
    assert orders[0]["products"][0] | {"id": "", "orderid": ""} == {
        "name": "Mug",
        "externalid": "mug-42",
        "price": 1200,
        "quantity": 2,
        "id": "",
        "orderid": "",
    }
    assert paths(ac).count("POST /api/3/connections") == 1
    assert paths(ac).count("POST /api/3/ecomCustomers") == 1
    assert "POST /event" not in paths(ac)


def test_an_order_already_there_is_not_written_again(ac: ActiveCampaignSandbox) -> None:
    with_client(ac, lambda c: send(c, order("ev-1", "1001")))
    # A new client (another replica, a restart) remembers nothing, and looks first.
    with_client(ac, lambda c: send(c, order("ev-1-again", "1001")))

    assert len(ac.view("orders")) == 1
    assert paths(ac).count("POST /api/3/ecomOrders") == 1
    assert paths(ac).count("POST /api/3/connections") == 1
    assert paths(ac).count("GET /api/3/ecomOrders") == 2


def test_a_connection_and_customer_made_elsewhere_are_used(ac: ActiveCampaignSandbox) -> None:
    with_client(ac, lambda c: send(c, order("ev-1", "1001")))

    with_client(ac, lambda c: send(c, order("ev-2", "1002")))

    assert paths(ac).count("POST /api/3/connections") == 1
    assert paths(ac).count("POST /api/3/ecomCustomers") == 1
    [customer] = api(ac, "GET", "/ecomCustomers")["ecomCustomers"]
    assert {o["customerid"] for o in ac.view("orders")} == {customer["id"]}


def test_an_abandoned_cart_is_an_order_with_a_checkout_id(ac: ActiveCampaignSandbox) -> None:
    with_client(ac, lambda c: send(c, cart("ev-1", "cart-7"), cart("ev-2", "cart-7")))

    [abandoned] = ac.view("orders")
    assert abandoned["externalcheckoutid"] == "cart-7"
    assert not abandoned.get("externalid")
    assert abandoned["abandoned_date"]
    assert abandoned["orderUrl"] == "https://shop.example/checkout/7"


def test_concurrent_orders_of_a_new_person_make_one_customer(ac: ActiveCampaignSandbox) -> None:
    async def at_once(client: ActiveCampaignClient) -> None:
        await asyncio.gather(*(send(client, order(f"ev-{i}", f"10{i}")) for i in range(3)))

    with_client(ac, at_once)

    assert len(api(ac, "GET", "/ecomCustomers")["ecomCustomers"]) == 1
    assert len(ac.view("orders")) == 3
