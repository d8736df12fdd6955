"""The bus form of an event: the fast path (EventRecord.bus_event, reusing the
API body's bytes) and the relay (the outbox row, EventRecord.bus_message)
publish the same EventTracked, for typed and custom events alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing.v1 import common_pb2, event_pb2
from marketing_runtime.envelope import TrackedEvent, parse_delivery, serialized_events
from marketing_runtime.timestamps import to_timestamp

from service.deliveries import outbox
from service.events.event_log import EventRecord
from service.events.handlers import event_input
from service.workers import relay

OCCURRED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


def _record(e: event_pb2.Event) -> EventRecord:
    given = event_input(e)
    return EventRecord(
        event_id=e.event_id,
        email=e.email,
        contact_key="k",
        metric=given.name or given.type,
        payload=given.payload,
        occurred_at=OCCURRED,
        body_field=given.type,
        body=given.body,
    )


def _fast_and_relayed(record: EventRecord) -> tuple[bus_pb2.EventTracked, bus_pb2.EventTracked]:
    (message,) = serialized_events([record.bus_event()], to_timestamp(OCCURRED))
    row = {
        "id": uuid.uuid4(),
        "seq": 1,
        "kind": outbox.EVENT_TRACKED,
        "contact_key": "k",
        "payload": record.bus_message().SerializeToString(),
        "created_at": OCCURRED,
        "retry_count": 0,
    }
    event_id, (_, relayed, _, _, _) = relay._message(row, OCCURRED)
    assert event_id == record.event_id
    return parse_delivery(message).event_tracked, parse_delivery(relayed).event_tracked


@settings(max_examples=100)
@given(properties=st.dictionaries(st.text(), json_values, max_size=5), value=st.booleans())
def test_a_custom_event_is_published_alike_by_both_paths(
    properties: dict[str, Any], value: bool
) -> None:
    struct = struct_pb2.Struct()
    struct.update(properties)
    custom = event_pb2.CustomEvent(name="review_submitted", properties=struct)
    if value:
        custom.value.CopyFrom(common_pb2.Money(currency_code="EUR", units=3))
    e = event_pb2.Event(event_id="e-1", email="ada@example.com", custom=custom)
    fast, relayed = _fast_and_relayed(_record(e))
    assert fast == relayed
    assert fast.WhichOneof("body") == "custom" and not fast.properties_json
    assert orjson.loads(fast.custom.properties_json) == event_input(e).payload["properties"]
    assert fast.custom.HasField("value") == value
    assert fast.occur_time == to_timestamp(OCCURRED)


def test_a_typed_event_is_published_alike_by_both_paths() -> None:
    order = event_pb2.Order(
        order_id="o-1",
        lines=[event_pb2.LineItem(product_id="p", quantity=2)],
        total=common_pb2.Money(currency_code="EUR", units=24, nanos=500_000_000),
    )
    e = event_pb2.Event(
        event_id="e-2", email="ada@example.com", placed_order=event_pb2.PlacedOrder(order=order)
    )
    fast, relayed = _fast_and_relayed(_record(e))
    assert fast == relayed
    assert fast.placed_order.SerializeToString() == e.placed_order.SerializeToString()


def test_bus_event_carries_the_api_body_bytes_as_they_are() -> None:
    body = event_pb2.ProductViewed(product=event_pb2.Product(product_id="p")).SerializeToString()
    record = EventRecord(
        event_id="e-3",
        email="ada@example.com",
        contact_key="k",
        metric="product_viewed",
        payload={"product": {"product_id": "p"}},
        occurred_at=datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        body_field="product_viewed",
        body=body,
    )
    assert record.bus_event() == TrackedEvent(
        "e-3", "k", "ada@example.com", "product_viewed", 1_000_000, "product_viewed", body
    )
    assert record.log_event().payload_json == b'{"product":{"product_id":"p"}}'


def test_fields_this_release_does_not_know_never_reach_the_bus() -> None:
    """A newer client's extra field (here number 99, 1 KB) is not validated or
    counted by the size limits, so it must not ride along in the body's bytes."""
    known = event_pb2.ProductViewed(product=event_pb2.Product(product_id="p1"))
    unknown_field = b"\x9a\x06" + b"\x80\x08" + b"x" * 1024  # field 99, length 1024
    body = event_pb2.ProductViewed()
    body.ParseFromString(known.SerializeToString() + unknown_field)
    event = event_pb2.Event(event_id="e1", email="ada@example.com", product_viewed=body)
    assert len(event.product_viewed.SerializeToString()) > 1024  # carried until discarded

    assert event_input(event).body == known.SerializeToString()
