"""The client's pacer (what the shared budget plugs into): entered around every request it
sends, with the bucket that request draws from (an import of one contact, its own); and,
through it, another replica creating the store's connection, a customer or an order between
our look and our create."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from dispatcher.providers.activecampaign.client import ActiveCampaignClient
from dispatcher.providers.activecampaign.ecommerce import Store
from dispatcher.providers.base import (
    ConsentChange,
    ConsentState,
    ImportContact,
    Profile,
    RateBucket,
    TrackedEvent,
)
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox
from tests.dispatcher.providers.activecampaign.conftest import api, with_client

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


class Pacer:
    """Notes each request it is asked about; `before` runs first, by request number."""

    def __init__(self, before: dict[int, Callable[[], None]] | None = None) -> None:
        self.asked: list[tuple[str, tuple[str, ...]]] = []
        self._before = before or {}

    @contextlib.asynccontextmanager
    async def __call__(self, operation: str, buckets: Sequence[RateBucket]) -> AsyncIterator[None]:
        self.asked.append((operation, tuple(bucket.name for bucket in buckets)))
        self._before.get(len(self.asked), lambda: None)()
        yield


def make_connection(sandbox: ActiveCampaignSandbox) -> None:
    store = Store()
    fields = ("service", "externalid", "name", "logo_url", "link_url")
    connection = {name.replace("_url", "Url"): getattr(store, name) for name in fields}
    body = {"connection": connection}
    api(sandbox, "POST", "/connections", body)


def make_customer(sandbox: ActiveCampaignSandbox) -> None:
    [connection] = api(sandbox, "GET", "/connections")["connections"]
    customer = {"connectionid": connection["id"], "externalid": "ada@example.com"}
    api(
        sandbox, "POST", "/ecomCustomers", {"ecomCustomer": customer | {"email": "ada@example.com"}}
    )


def order(event_id: str, order_id: str) -> TrackedEvent:
    properties = {"order": {"order_id": order_id, "lines": [], "total": 24.0}}
    return TrackedEvent(
        event_id, "ada@example.com", "placed_order", WHEN, properties, Decimal(24), "EUR"
    )


async def everything(client: ActiveCampaignClient) -> None:
    """One of each operation, first uses (fields, tag, connection, customer) included."""
    state = ConsentState(ConsentChange("ada@example.com", None, True), True, False)
    await client.upsert_profile(Profile("ada@example.com", properties={"plan": "pro"}))
    for call in client.plan_consent([("ada", state)], None):
        await call.send(call.owners)
    await client.suppress(["ada@example.com"])
    await client.unsuppress(["ada@example.com"])
    viewed = TrackedEvent("ev-1", "ada@example.com", "product_viewed", WHEN, {})
    for event in (viewed, order("ev-2", "1001")):
        await client.create_events([client.prepare_event(event)])
    await client.start_import([ImportContact(Profile("bob@example.com"))])
    batch = await client.start_import([ImportContact(Profile(a)) for a in ("cy@x.io", "di@x.io")])
    await client.import_status(batch)
    await client.read_person("ada@example.com", None)
    await client.request_erasure("ada@example.com")


def test_every_request_awaits_the_pacer_with_its_bucket(ac: ActiveCampaignSandbox) -> None:
    pacer = Pacer()

    def paced(client: ActiveCampaignClient) -> object:
        client.pace_requests(pacer)
        return everything(client)

    with_client(ac, paced)  # type: ignore[arg-type]

    sent = ac.requests()
    assert len(pacer.asked) == len(sent) > 20
    for (operation, buckets), request in zip(pacer.asked, sent, strict=True):
        if request["path"] == "/event":
            assert buckets == ("event_tracking",), request
        elif request["method"] == "POST" and request["path"] == "/api/3/import/bulk_import":
            # One contact: ActiveCampaign's single-contact bucket (20/min), not bulk's.
            single = len(request["body"]["contacts"]) == 1
            assert buckets == ("account", "bulk_import_single_contact" if single else "bulk_import")
        else:
            assert buckets == ("account",), (operation, request["path"])


def test_a_connection_and_customer_made_between_our_look_and_create_are_used(
    ac: ActiveCampaignSandbox,
) -> None:
    """Requests of a first order: 1 look for the connection, 2 create it, then here (it was
    refused as made meanwhile) 3 look again, 4 look for the order, 5 look for the customer,
    6 create it, 7 the order. Another replica makes the connection before our 2 and the
    customer before our 6: ours are refused as duplicates, and theirs are used."""
    pacer = Pacer({2: lambda: make_connection(ac), 6: lambda: make_customer(ac)})

    async def first_order(client: ActiveCampaignClient) -> None:
        client.pace_requests(pacer)
        await client.create_events([client.prepare_event(order("ev-1", "1001"))])

    with_client(ac, first_order)

    [connection] = api(ac, "GET", "/connections")["connections"]
    [customer] = api(ac, "GET", "/ecomCustomers")["ecomCustomers"]
    [placed] = ac.view("orders")
    assert (placed["connectionid"], placed["customerid"]) == (connection["id"], customer["id"])
    assert [r["status"] for r in ac.rejections()] == [422, 422]


def test_an_order_written_between_our_look_and_our_post_is_done(ac: ActiveCampaignSandbox) -> None:
    """Requests: 1 look for the connection, 2 create it, 3 look for the order, 4 look for the
    customer, 5 create it, 6 the order. Another replica writes the same order before our 6:
    ours is refused as a duplicate, and the order counts as recorded, not as failed."""

    def make_order() -> None:
        [connection] = api(ac, "GET", "/connections")["connections"]
        [customer] = api(ac, "GET", "/ecomCustomers")["ecomCustomers"]
        theirs = {
            "externalid": "1001",
            "connectionid": connection["id"],
            "customerid": customer["id"],
            "source": "1",
            "email": "ada@example.com",
            "currency": "EUR",
            "totalPrice": 2400,
            "externalCreatedDate": WHEN.isoformat(),
        }
        api(ac, "POST", "/ecomOrders", {"ecomOrder": theirs})

    pacer = Pacer({6: make_order})

    async def twice(client: ActiveCampaignClient) -> None:
        client.pace_requests(pacer)
        await client.create_events([client.prepare_event(order("ev-1", "1001"))])
        await client.create_events([client.prepare_event(order("ev-2", "1001"))])

    with_client(ac, twice)

    assert [o["externalid"] for o in ac.view("orders")] == ["1001"]
    assert [r["status"] for r in ac.rejections()] == [422]
    assert len(pacer.asked) == 6  # the second event knew the order was written
