"""E-commerce: connections, customers, orders and abandoned carts, their validation and the
filters a client uses to look before it writes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.sandbox.activecampaign.conftest import answer

PAST = "2027-01-15T07:00:00+00:00"  # before the test clock's start
FUTURE = "2027-01-16T07:00:00+00:00"


@pytest.fixture
def store(api: httpx.Client) -> dict[str, str]:
    """A connection and a customer of it: their ids."""
    connection = {"service": "shop", "externalid": "shop-1", "name": "Shop"}
    connection |= {"logoUrl": "https://shop.example/logo.png", "linkUrl": "https://shop.example"}
    made = answer(api.post("/connections", json={"connection": connection}), 200)["connection"]
    customer = {"connectionid": made["id"], "externalid": "c-1", "email": "ada@example.com"}
    customer["acceptsMarketing"] = "1"
    bought = answer(api.post("/ecomCustomers", json={"ecomCustomer": customer}), 201)
    return {"connection": made["id"], "customer": bought["ecomCustomer"]["id"]}


def order(store: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {
        "externalid": "order-1",
        "source": 1,
        "email": "ada@example.com",
        "connectionid": store["connection"],
        "customerid": store["customer"],
        "totalPrice": 4200,
        "currency": "EUR",
        "externalCreatedDate": PAST,
        "orderProducts": [{"name": "Tea", "price": 2100, "quantity": 2, "externalid": "tea"}],
    }
    return {"ecomOrder": {k: v for k, v in (body | fields).items() if v is not None}}


def test_an_order_is_201_with_its_products(
    api: httpx.Client, store: dict[str, str], ac: ActiveCampaignSandbox
) -> None:
    created = answer(api.post("/ecomOrders", json=order(store)), 201)

    assert (
        created["ecomOrder"] | {"externalid": "order-1", "totalPrice": 4200, "currency": "EUR"}
        == (created["ecomOrder"])
    )
    assert created["ecomOrder"]["id"] == "1"
    assert [(p["name"], p["price"], p["quantity"]) for p in created["ecomOrderProducts"]] == [
        ("Tea", 2100, 2)
    ]
    assert [c["id"] for c in created["connections"]] == [store["connection"]]
    assert [o["products"][0]["externalid"] for o in ac.view("orders")] == ["tea"]


def test_an_abandoned_cart_is_recovered_by_setting_its_externalid(
    api: httpx.Client, store: dict[str, str], ac: ActiveCampaignSandbox
) -> None:
    cart = order(store, externalid=None, externalcheckoutid="cart-1", abandoned_date=PAST)
    created = answer(api.post("/ecomOrders", json=cart), 201)["ecomOrder"]
    assert (created["externalid"], created["abandoned_date"]) == (None, PAST)

    recovered = api.put(
        f"/ecomOrders/{created['id']}", json={"ecomOrder": {"externalid": "order-7"}}
    )

    assert answer(recovered, 200)["ecomOrder"]["externalid"] == "order-7"
    assert answer(recovered, 200)["ecomOrderProducts"][0]["name"] == "Tea"
    (saved,) = ac.view("orders")
    assert (saved["externalid"], saved["externalcheckoutid"]) == ("order-7", "cart-1")


def test_the_openapi_spelling_of_the_abandoned_date_is_taken(
    api: httpx.Client, store: dict[str, str]
) -> None:
    cart = order(store, externalid=None, externalcheckoutid="cart-2", abandonedDate=PAST)

    assert answer(api.post("/ecomOrders", json=cart), 201)["ecomOrder"]["abandoned_date"] == PAST


@pytest.mark.parametrize(
    ("fields", "code", "pointer"),
    [
        ({"externalid": None}, "field_missing", "/ecomOrder/externalid"),
        ({"totalPrice": 42.5}, "field_invalid", "/ecomOrder/totalPrice"),
        ({"totalPrice": "4200"}, "field_invalid", "/ecomOrder/totalPrice"),
        ({"totalPrice": None}, "field_missing", "/ecomOrder/totalPrice"),
        ({"currency": "EURO"}, "field_invalid", "/ecomOrder/currency"),
        ({"currency": None}, "field_missing", "/ecomOrder/currency"),
        ({"source": 2}, "field_invalid", "/ecomOrder/source"),
        ({"email": None}, "field_missing", "/ecomOrder/email"),
        ({"externalCreatedDate": "yesterday"}, "field_invalid", "/ecomOrder/externalCreatedDate"),
        ({"connectionid": "9"}, "related_missing", "/ecomOrder/connectionid"),
        ({"customerid": "9"}, "related_missing", "/ecomOrder/customerid"),
        ({"customerid": None}, "field_missing", "/ecomOrder/customerid"),
        (
            {"orderProducts": [{"name": "Tea", "price": 1.5, "quantity": 1, "externalid": "t"}]},
            "field_invalid",
            "/ecomOrder/orderProducts/0/price",
        ),
        (
            {"orderProducts": [{"name": "Tea", "price": 1, "quantity": 0, "externalid": "t"}]},
            "field_invalid",
            "/ecomOrder/orderProducts/0/quantity",
        ),
        (
            {"externalid": None, "externalcheckoutid": "cart-1"},
            "field_missing",
            "/ecomOrder/abandoned_date",
        ),
        (
            {"externalid": None, "externalcheckoutid": "cart-1", "abandoned_date": FUTURE},
            "field_invalid",
            "/ecomOrder/abandoned_date",
        ),
    ],
)
def test_order_validation_is_422_naming_the_field(
    api: httpx.Client, store: dict[str, str], fields: dict[str, Any], code: str, pointer: str
) -> None:
    (error,) = answer(api.post("/ecomOrders", json=order(store, **fields)), 422)["errors"]

    assert (error["code"], error["source"]["pointer"]) == (code, pointer)


def test_repeats_are_422_duplicate(api: httpx.Client, store: dict[str, str]) -> None:
    answer(api.post("/ecomOrders", json=order(store)), 201)
    customer = {"connectionid": store["connection"], "externalid": "c-1", "email": "b@example.com"}
    connection = {
        "service": "shop",
        "externalid": "shop-1",
        "name": "Again",
        "logoUrl": "l",
        "linkUrl": "u",
    }

    for path, body in (
        ("/ecomOrders", order(store)),
        ("/ecomCustomers", {"ecomCustomer": customer}),
        ("/connections", {"connection": connection}),
    ):
        assert answer(api.post(path, json=body), 422)["errors"][0]["code"] == "duplicate"


def test_a_customer_needs_a_known_connection_and_an_email(
    api: httpx.Client, store: dict[str, str]
) -> None:
    unknown = {"connectionid": "9", "externalid": "c-2", "email": "b@example.com"}
    no_email = {"connectionid": store["connection"], "externalid": "c-2"}

    assert (
        answer(api.post("/ecomCustomers", json={"ecomCustomer": unknown}), 422)["errors"][0]["code"]
        == "related_missing"
    )
    assert answer(api.post("/ecomCustomers", json={"ecomCustomer": no_email}), 422)["errors"][0][
        "source"
    ] == {"pointer": "/ecomCustomer/email"}
    assert (
        answer(api.post("/connections", json={"connection": {"service": "x"}}), 422)["errors"][0][
            "code"
        ]
        == "field_missing"
    )


def test_lists_filter_for_look_before_write(api: httpx.Client, store: dict[str, str]) -> None:
    answer(api.post("/ecomOrders", json=order(store)), 201)
    answer(
        api.post("/ecomOrders", json=order(store, externalid="order-2", email="b@example.com")), 201
    )

    by_id = answer(api.get("/ecomOrders", params={"filters[externalid]": "order-2"}), 200)
    by_email = answer(api.get("/ecomOrders", params={"filters[email]": "ADA@example.com"}), 200)
    customers = answer(api.get("/ecomCustomers", params={"filters[email]": "ada@example.com"}), 200)
    connections = answer(api.get("/connections", params={"filters[externalid]": "shop-1"}), 200)

    assert [o["externalid"] for o in by_id["ecomOrders"]] == ["order-2"]
    assert [o["externalid"] for o in by_email["ecomOrders"]] == ["order-1"]
    assert [c["id"] for c in customers["ecomCustomers"]] == [store["customer"]]
    assert [c["id"] for c in connections["connections"]] == [store["connection"]]


def test_updating_an_unknown_order_is_404(api: httpx.Client) -> None:
    refused = api.put("/ecomOrders/5", json={"ecomOrder": {"externalid": "x"}})

    assert answer(refused, 404) == {"message": "No Result found for EcomOrder with id 5"}
