"""E-commerce: connections, customers, and orders (abandoned carts are orders with an
`externalcheckoutid` and an abandoned date).

From shared/PROVIDERS-API.md, "E-commerce and abandoned cart": POST /connections 200,
/ecomCustomers 201, /ecomOrders 201; money in cents; a 3-letter currency; an order needs an
existing connection and customer; a cart is recovered by a PUT that sets `externalid`. Both
spellings of the abandoned date are taken (`abandoned_date` from the docs, `abandonedDate`
from the OpenAPI file) and answered as `abandoned_date`.

Beyond the page (the model decides): amounts must be whole non-negative numbers (cents, not
decimals); a customer must belong to the order's connection; connections are unique per
(service, externalid), customers per (connection, externalid), orders and carts per
(connection, externalid) and (connection, externalcheckoutid): a repeat is 422 duplicate;
a missing or wrong field is 422 field_missing / field_invalid with its pointer."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from dispatcher.sandbox.activecampaign.body import Call, optional_text, page, ref, required_text
from dispatcher.sandbox.activecampaign.contacts import is_email
from dispatcher.sandbox.activecampaign.errors import duplicate, invalid, missing, related_missing
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.store import Account, Row, public, timestamp

ORDER = "/ecomOrder"
CURRENCY = re.compile(r"^[A-Za-z]{3}$")
AMOUNTS = ("shippingAmount", "taxAmount", "discountAmount")
ORDER_TEXTS = ("orderUrl", "shippingMethod", "orderNumber", "externalUpdatedDate")


def create_connection(account: Account, call: Call) -> Answer:
    given = call.resource("connection")
    names = ("service", "externalid", "name", "logoUrl", "linkUrl")
    row: Row = {name: required_text(given, name, "/connection") for name in names}
    if account.connections.first(service=row["service"], externalid=row["externalid"]):
        raise duplicate("/connection/externalid", "There is already a connection for this store")
    row |= {"status": "1", "syncStatus": "0", "cdate": timestamp(call.now)}
    return 200, {"connection": public(account.connections.insert(row))}


def create_customer(account: Account, call: Call) -> Answer:
    given = call.resource("ecomCustomer")
    connection_id = _existing(account, given, "connectionid", "/ecomCustomer")
    externalid = required_text(given, "externalid", "/ecomCustomer")
    email = required_text(given, "email", "/ecomCustomer")
    if not is_email(email):
        raise invalid("/ecomCustomer/email", "email must be an email address")
    if account.ecom_customers.first(connectionid=connection_id, externalid=externalid):
        raise duplicate("/ecomCustomer/externalid", "There is already a customer with this id")
    accepts = optional_text(given, "acceptsMarketing", "/ecomCustomer", "0")
    row = {"connectionid": connection_id, "externalid": externalid, "email": email}
    row |= {"acceptsMarketing": accepts, "cdate": timestamp(call.now)}
    return 201, {"ecomCustomer": public(account.ecom_customers.insert(row))}


def _existing(account: Account, given: dict[str, Any], name: str, pointer: str) -> str:
    found = ref(given.get(name))
    if given.get(name) in (None, ""):
        raise missing(f"{pointer}/{name}")
    if found is None or account.connections.get(found) is None:
        raise related_missing(f"{pointer}/{name}", "Connection")
    return found


def create_order(account: Account, call: Call) -> Answer:
    given = call.resource("ecomOrder")
    order, products = _valid_order(account, given, call.now, None)
    row = account.ecom_orders.insert(order | {"cdate": timestamp(call.now)})
    return 201, _order_answer(account, row, _replace_products(account, row, products))


def update_order(account: Account, call: Call) -> Answer:
    row = account.ecom_orders.need(call.params[0])
    given = call.resource("ecomOrder")
    merged = {k: v for k, v in row.items() if k not in ("id", "cdate", "udate")} | given
    if "abandonedDate" in given:
        merged.pop("abandoned_date", None)
    order, products = _valid_order(account, merged, call.now, row["id"])
    row |= order | {"udate": timestamp(call.now)}
    if "orderProducts" in given:
        _replace_products(account, row, products)
    saved = account.ecom_order_products.where(orderid=row["id"])
    return 200, _order_answer(account, row, saved)


def _order_answer(account: Account, row: Row, products: list[Row]) -> dict[str, Any]:
    connection = account.connections.get(row["connectionid"])
    return {
        "connections": [public(connection)] if connection else [],
        "ecomOrderProducts": [public(p) for p in products],
        "ecomOrderDiscounts": [],
        "ecomOrder": public(row),
    }


def _replace_products(account: Account, row: Row, products: list[Row]) -> list[Row]:
    for old in account.ecom_order_products.where(orderid=row["id"]):
        account.ecom_order_products.delete(old["id"])
    return [account.ecom_order_products.insert(p | {"orderid": row["id"]}) for p in products]


def _valid_order(
    account: Account, given: dict[str, Any], now: float, order_id: str | None
) -> tuple[Row, list[Row]]:
    """The order to store and its products; a 422 naming the first wrong field."""
    order: Row = _identity(account, given, order_id)
    order["source"] = _choice(given, "source", ("0", "1"))
    order["email"] = required_text(given, "email", ORDER)
    if not is_email(order["email"]):
        raise invalid(f"{ORDER}/email", "email must be an email address")
    order |= _store(account, given)
    order["totalPrice"] = _cents(given, "totalPrice", required=True)
    order |= {name: _cents(given, name) for name in AMOUNTS if given.get(name) is not None}
    currency = required_text(given, "currency", ORDER)
    if not CURRENCY.match(currency):
        raise invalid(f"{ORDER}/currency", "currency must be a 3-letter ISO code")
    order["currency"] = currency.upper()
    order["externalCreatedDate"] = _date(given, "externalCreatedDate", required=True)
    order |= {name: str(given[name]) for name in ORDER_TEXTS if given.get(name) is not None}
    if (
        (order.get("externalcheckoutid") and not order.get("externalid"))
        or given.get("abandoned_date")
        or given.get("abandonedDate")
    ):
        order["abandoned_date"] = _abandoned_date(given, now)
    return order, _products(given.get("orderProducts"))


def _identity(account: Account, given: dict[str, Any], order_id: str | None) -> Row:
    """externalid (an order) or externalcheckoutid (a cart), unique per connection."""
    identity = {
        name: str(given[name])
        for name in ("externalid", "externalcheckoutid")
        if given.get(name) not in (None, "")
    }
    if not identity:
        raise missing(f"{ORDER}/externalid")
    connection_id = ref(given.get("connectionid"))
    for name, value in identity.items():
        same = account.ecom_orders.first(connectionid=connection_id, **{name: value})
        if same is not None and same["id"] != order_id:
            raise duplicate(f"{ORDER}/{name}", f"There is already an order with this {name}")
    return {"externalid": identity.get("externalid")} | identity


def _store(account: Account, given: dict[str, Any]) -> Row:
    connection_id = _existing(account, given, "connectionid", ORDER)
    if given.get("customerid") in (None, ""):
        raise missing(f"{ORDER}/customerid")
    customer_id = ref(given.get("customerid")) or ""
    customer = account.ecom_customers.get(customer_id)
    if customer is None or customer["connectionid"] != connection_id:
        raise related_missing(f"{ORDER}/customerid", "Customer")
    return {"connectionid": connection_id, "customerid": customer_id}


def _choice(given: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    if given.get(name) in (None, ""):
        raise missing(f"{ORDER}/{name}")
    value = ref(given[name])
    if value not in allowed:
        raise invalid(f"{ORDER}/{name}", f"{name} must be one of {', '.join(allowed)}")
    return value


def _cents(
    given: dict[str, Any], name: str, *, required: bool = False, pointer: str = ORDER
) -> int:
    value = given.get(name)
    if value is None:
        if required:
            raise missing(f"{pointer}/{name}")
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(f"{pointer}/{name}", f"{name} is a whole number of cents")
    return value


def _date(given: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = given.get(name)
    if value in (None, ""):
        if required:
            raise missing(f"{ORDER}/{name}")
        return None
    parsed = _parse_date(value)
    if parsed is None:
        raise invalid(f"{ORDER}/{name}", f"{name} must be an ISO-8601 date and time")
    return str(value)


def _parse_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _abandoned_date(given: dict[str, Any], now: float) -> str:
    value = given.get("abandoned_date") or given.get("abandonedDate")
    pointer = f"{ORDER}/abandoned_date"
    if value in (None, ""):
        raise missing(pointer)
    parsed = _parse_date(value)
    if parsed is None:
        raise invalid(pointer, "abandoned_date must be an ISO-8601 date and time")
    if parsed.tzinfo is not None and parsed.timestamp() > now:
        raise invalid(pointer, "abandoned_date must be in the past")
    return str(value)


def _products(given: Any) -> list[Row]:
    if given is None:
        return []
    if not isinstance(given, list):
        raise invalid(f"{ORDER}/orderProducts", "orderProducts must be an array")
    products = []
    for index, item in enumerate(given):
        pointer = f"{ORDER}/orderProducts/{index}"
        if not isinstance(item, dict):
            raise invalid(pointer, "a product is an object")
        product: Row = {name: required_text(item, name, pointer) for name in ("name", "externalid")}
        product["price"] = _cents(item, "price", required=True, pointer=pointer)
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise invalid(f"{pointer}/quantity", "quantity is a whole number of at least 1")
        product["quantity"] = quantity
        for name in ("category", "sku", "description", "imageUrl", "productUrl"):
            if item.get(name) is not None:
                product[name] = str(item[name])
        products.append(product)
    return products


def _filtered(rows: list[Row], query: dict[str, str], names: tuple[str, ...]) -> list[Row]:
    for name in names:
        wanted = query.get(f"filters[{name}]")
        if wanted is not None:
            rows = [r for r in rows if str(r.get(name) or "").lower() == wanted.lower()]
    return rows


def lister(key: str, table: str, names: tuple[str, ...]) -> Any:
    def answer(account: Account, call: Call) -> Answer:
        rows = _filtered(list(getattr(account, table)), call.query, names)
        selected, meta = page(rows, call.query)
        return 200, {key: [public(r) for r in selected], "meta": meta}

    return answer


ROUTES = [
    route("POST", "/api/3/connections", create_connection),
    route(
        "GET", "/api/3/connections", lister("connections", "connections", ("service", "externalid"))
    ),
    route("POST", "/api/3/ecomCustomers", create_customer),
    route(
        "GET",
        "/api/3/ecomCustomers",
        lister("ecomCustomers", "ecom_customers", ("email", "externalid", "connectionid")),
    ),
    route("POST", "/api/3/ecomOrders", create_order),
    route("PUT", "/api/3/ecomOrders/{id}", update_order),
    route(
        "GET",
        "/api/3/ecomOrders",
        lister(
            "ecomOrders",
            "ecom_orders",
            ("externalid", "externalcheckoutid", "email", "connectionid", "customerid"),
        ),
    ),
]
