"""Placed orders and abandoned carts as ActiveCampaign e-commerce orders.

A `placed_order` event becomes an ecomOrder with `externalid` = the order id; a
`cart_abandoned` event one with `externalcheckoutid` = the cart id and `abandoned_date` (the
cart's last activity, else the event's time). Both are real-time (`source` 1, which is what
starts ActiveCampaign's automations) and belong to our store's connection and to the person's
ecomCustomer, which are looked up, else created, on first use and remembered.

No idempotency key exists, so before writing an order we look for one with the same external
id in our connection and skip the write when it is there; orders this process wrote are
remembered, so a repeat is not even looked up. Amounts are in cents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dispatcher.providers.activecampaign.bodies import cents
from dispatcher.providers.activecampaign.http import ApiHttp, JsonObject, record_id, records
from dispatcher.providers.activecampaign.memory import Recent
from dispatcher.providers.base import TrackedEvent
from dispatcher.providers.errors import PermanentProviderError
from dispatcher.providers.timefmt import iso_time

PLACED_ORDER = "placed_order"
CART_ABANDONED = "cart_abandoned"
KINDS = frozenset({PLACED_ORDER, CART_ABANDONED})
REMEMBERED = 10_000


@dataclass(frozen=True)
class Store:
    """Our store as an ActiveCampaign e-commerce connection."""

    externalid: str = "marketing-automation"
    service: str = "marketing-automation"
    name: str = "Marketing automation"
    link_url: str = "https://example.invalid/"
    logo_url: str = "https://example.invalid/logo.png"


@dataclass(frozen=True)
class OrderKey:
    """What makes an order unique in a connection: `externalid` or `externalcheckoutid`."""

    field: str
    value: str


def order_body(event: TrackedEvent) -> tuple[OrderKey, JsonObject]:
    """The ecomOrder of a placed order or abandoned cart, without the connection and customer
    ids (added when it is sent). PermanentProviderError when it lacks what AC requires."""
    if event.value is None or not event.value_currency:
        raise PermanentProviderError(
            f"{event.metric} {event.event_id!r} has no total: ActiveCampaign requires a"
            " totalPrice and currency",
            code="no_total",
        )
    body: JsonObject = {
        "email": event.email,
        "source": 1,
        "totalPrice": cents(event.value),
        "currency": event.value_currency.upper(),
        "externalCreatedDate": iso_time(event.time),
    }
    if event.metric == PLACED_ORDER:
        order = _object(event.properties.get("order"))
        key = OrderKey("externalid", str(order.get("order_id") or event.event_id))
        body |= {"orderNumber": key.value, "orderProducts": _products(order.get("lines"))}
        body |= _amounts(order)
    else:
        cart = _object(event.properties.get("cart"))
        key = OrderKey("externalcheckoutid", str(cart.get("cart_id") or event.event_id))
        abandoned = cart.get("last_activity_time") or iso_time(event.time)
        body |= {"abandoned_date": abandoned, "orderProducts": _products(cart.get("items"))}
        if cart.get("checkout_url"):
            body["orderUrl"] = cart["checkout_url"]
    body[key.field] = key.value
    return key, body


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _amounts(order: dict[str, Any]) -> JsonObject:
    amounts = {"discountAmount": order.get("discount"), "shippingAmount": order.get("shipping")}
    return {name: cents(value) for name, value in amounts.items() if value is not None}


def _products(lines: object) -> list[JsonObject]:
    products = []
    for line in lines if isinstance(lines, list) else []:
        item = _object(line)
        ident = str(item.get("product_id") or item.get("sku") or "")
        product: JsonObject = {
            "externalid": ident,
            "name": str(item.get("title") or ident or "item"),
            "price": cents(item.get("unit_price") or 0),
            "quantity": int(item.get("quantity") or 1),
        }
        optional = {"sku": "sku", "url": "productUrl", "image_url": "imageUrl"}
        product |= {theirs: item[ours] for ours, theirs in optional.items() if item.get(ours)}
        products.append(product)
    return products


class Orders:
    """Our connection, customers and orders in one account."""

    def __init__(self, api: ApiHttp, store: Store) -> None:
        self._api = api
        self._store = store
        self._connection = ""
        self._lock = asyncio.Lock()
        self._customers: Recent[str, str] = Recent(REMEMBERED)
        self._customer_lock = asyncio.Lock()
        self._written: Recent[OrderKey, bool] = Recent(REMEMBERED)

    async def record(self, key: OrderKey, body: JsonObject, operation: str) -> None:
        """POST /ecomOrders unless the order (or cart) is already there."""
        if self._written.get(key):
            return
        connection = await self.connection(operation)
        if not await self._exists(key, connection, operation):
            customer = await self.customer(body["email"], operation)
            order = body | {"connectionid": connection, "customerid": customer}
            await self._post_order(order, operation)
        self._written.put(key, True)

    async def _post_order(self, order: JsonObject, operation: str) -> None:
        """A 422 `duplicate` means the order is there: another replica (or an earlier
        attempt whose answer was lost) wrote it after our look."""
        try:
            await self._api.call(
                "POST", "/ecomOrders", operation=operation, body={"ecomOrder": order}
            )
        except PermanentProviderError as exc:
            if exc.code != "duplicate":
                raise

    async def _exists(self, key: OrderKey, connection: str, operation: str) -> bool:
        params = {f"filters[{key.field}]": key.value, "filters[connectionid]": connection}
        found = await self._api.call("GET", "/ecomOrders", operation=operation, params=params)
        return any(str(order.get(key.field)) == key.value for order in records(found, "ecomOrders"))

    async def connection(self, operation: str) -> str:
        async with self._lock:
            if not self._connection:
                self._connection = await self._find_or_create_connection(operation)
        return self._connection

    async def _find_or_create_connection(self, operation: str) -> str:
        store = self._store
        found = await self._find_connection(operation)
        if found:
            return found
        body = {
            "connection": {
                "service": store.service,
                "externalid": store.externalid,
                "name": store.name,
                "logoUrl": store.logo_url,
                "linkUrl": store.link_url,
            }
        }
        return await _create_or_find(
            self._api.call("POST", "/connections", operation=operation, body=body),
            "connection",
            lambda: self._find_connection(operation),
        )

    async def _find_connection(self, operation: str) -> str:
        store = self._store
        params = {"filters[service]": store.service, "filters[externalid]": store.externalid}
        found = await self._api.call("GET", "/connections", operation=operation, params=params)
        for connection in records(found, "connections"):
            if connection.get("externalid") == store.externalid:
                return str(connection.get("id"))
        return ""

    async def customer(self, email: str, operation: str) -> str:
        key = email.strip().lower()
        known = self._customers.get(key)
        if known:
            return known
        # Concurrent events of one new person must not make two customers: one looks, the
        # other then finds the id remembered. (Made once per person, so one lock will do.)
        async with self._customer_lock:
            known = self._customers.get(key)
            if not known:
                known = await self._find_or_create_customer(email, operation)
                self._customers.put(key, known)
        return known

    async def _find_or_create_customer(self, email: str, operation: str) -> str:
        connection = await self.connection(operation)
        found = await self._find_customer(email, connection, operation)
        if found:
            return found
        body = {
            "ecomCustomer": {
                "connectionid": connection,
                "externalid": email.strip().lower(),
                "email": email,
                "acceptsMarketing": "0",
            }
        }
        return await _create_or_find(
            self._api.call("POST", "/ecomCustomers", operation=operation, body=body),
            "ecomCustomer",
            lambda: self._find_customer(email, connection, operation),
        )

    async def _find_customer(self, email: str, connection: str, operation: str) -> str:
        params = {"filters[email]": email, "filters[connectionid]": connection}
        found = await self._api.call("GET", "/ecomCustomers", operation=operation, params=params)
        for customer in records(found, "ecomCustomers"):
            if str(customer.get("email", "")).lower() == email.strip().lower():
                return str(customer.get("id"))
        return ""

    def forget(self, email: str) -> None:
        """After an erasure: the person's customer id may be gone with the contact."""
        self._customers.forget(email.strip().lower())


async def _create_or_find(
    create: Awaitable[JsonObject | None], key: str, find: Callable[[], Awaitable[str]]
) -> str:
    """The id `create` answers; when it is a duplicate (another replica created the object
    since we looked), the one `find` now finds."""
    try:
        created = await create
    except PermanentProviderError as exc:
        if exc.code == "duplicate" and (found := await find()):
            return found
        raise
    return _required_id(created, key)


def _required_id(created: JsonObject | None, key: str) -> str:
    ident = record_id(created, key)
    if not ident:
        raise PermanentProviderError(f"ActiveCampaign created a {key} without an id")
    return ident
