"""Back-in-stock over gRPC: a waitlist joined, listed by product and by
contact, a restock notifying it through the service's own flow worker, and
bad requests refused with the field named."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from marketing.v1 import back_in_stock_pb2 as bp
from marketing.v1 import event_pb2
from marketing.v1 import service_pb2 as pb

from tests.harness import (
    ServiceHarness,
    assert_eventually,
    field_violations,
    own_database,
    unique_email,
)

WAITING = bp.BackInStockSubscription.STATE_WAITING
NOTIFIED = bp.BackInStockSubscription.STATE_NOTIFIED


@pytest.fixture(scope="module")
def stub(database_url: str) -> Iterator[object]:
    with own_database(database_url, "waitapi") as url, ServiceHarness.start(url) as running:
        yield running.stub


def _product(product_id: str) -> event_pb2.Product:
    return event_pb2.Product(
        product_id=product_id, title="Stoneware mug", url=f"https://shop.example/{product_id}"
    )


def test_a_waitlist_is_notified_once_the_product_is_back(stub) -> None:
    product = f"mug-{uuid.uuid4().hex[:6]}"
    email = unique_email("waiting")
    joined = stub.SubscribeBackInStock(
        pb.SubscribeBackInStockRequest(email=email, product_id=product, source="pdp")
    )
    assert joined.created and joined.subscription.state == WAITING
    assert joined.subscription.name.startswith("backInStockSubscriptions/")
    by_contact = stub.ListBackInStockSubscriptions(
        pb.ListBackInStockSubscriptionsRequest(contact=joined.subscription.contact)
    )
    assert [s.product_id for s in by_contact.subscriptions] == [product]
    restock = stub.NotifyBackInStock(
        pb.NotifyBackInStockRequest(product_id=product, product=_product(product))
    ).restock
    assert restock.picked == 1 and restock.name.startswith("restocks/")

    def notified() -> bool:
        listed = stub.ListBackInStockSubscriptions(
            pb.ListBackInStockSubscriptionsRequest(product_id=product)
        ).subscriptions
        return [s.state for s in listed] == [NOTIFIED] and listed[0].enrolment != ""

    assert_eventually(notified, timeout_s=10)


def test_bad_requests_name_their_fields(stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.NotifyBackInStock(
            pb.NotifyBackInStockRequest(
                product_id="has space",
                quantity=0,
                product=event_pb2.Product(url="http://insecure.example/x"),
            )
        )
    assert set(field_violations(caught.value)) == {"product_id", "quantity", "product.url"}
    with pytest.raises(grpc.RpcError) as both:
        stub.ListBackInStockSubscriptions(pb.ListBackInStockSubscriptionsRequest())
    assert "product_id" in field_violations(both.value)
    with pytest.raises(grpc.RpcError) as missing:
        stub.UnsubscribeBackInStock(
            pb.UnsubscribeBackInStockRequest(email=unique_email(), product_id="nothing")
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
