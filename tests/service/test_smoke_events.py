from marketing.v1 import common_pb2, event_pb2, service_pb2 as pb

from tests.harness import unique_email


def test_track_order(stub, harness):
    email = unique_email()
    order = event_pb2.Order(
        order_id="o1",
        total=common_pb2.Money(currency_code="EUR", units=12),
        lines=[event_pb2.LineItem(product_id="p1", quantity=2)],
    )
    resp = stub.TrackEvent(pb.TrackEventRequest(event=event_pb2.Event(email=email, placed_order=event_pb2.PlacedOrder(order=order))))
    assert resp.event_id
    stats = stub.GetQueueStats(pb.GetQueueStatsRequest())
    assert stats.pending >= 1
