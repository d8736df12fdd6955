"""Events serialized in bulk are the very bytes `delivery` gives one by one;
message sizes as nats-server counts them (the largest event's fit is checked in
tests/bus_contract)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import nats
from google.protobuf import timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing_runtime.envelope import (
    MSG_ID_HEADER,
    TrackedEvent,
    serialized_events,
    wire_size,
)
from marketing_runtime.event_bodies import set_body
from marketing_runtime.timestamps import EPOCH, to_timestamp
from nats.js.api import StreamConfig

from tests.bus_helpers import delivery
from tests.harness import until_true
from tests.processes import SMALL_MAX_PAYLOAD, NatsServer

# Bodies of each field, serialized: those of one event follow those of
# another in the one refilled message, of the same field or not.
_BODIES = st.sampled_from(
    [
        ("product_viewed", b""),
        (
            "product_viewed",
            bus_pb2.ProductViewed(product=bus_pb2.Product(product_id="p")).SerializeToString(),
        ),
        (
            "placed_order",
            bus_pb2.PlacedOrder(order=bus_pb2.Order(order_id="o")).SerializeToString(),
        ),
        ("custom", bus_pb2.CustomEvent(name="n", properties_json=b'{"a":1}').SerializeToString()),
        ("custom", bus_pb2.CustomEvent(name="m").SerializeToString()),
    ]
)
_EVENTS = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=20),
        st.text(max_size=64),
        st.text(max_size=40),
        st.text(max_size=20),
        st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999),
        _BODIES,
    ).map(lambda t: TrackedEvent(*t[:5], *t[5])),
    max_size=20,
)


@settings(max_examples=100)
@given(events=_EVENTS, created_s=st.integers(0, 4_000_000_000))
def test_bulk_serialization_matches_one_by_one(events: list[TrackedEvent], created_s: int) -> None:
    created = to_timestamp(datetime.fromtimestamp(created_s, UTC))
    assert list(serialized_events(events, created)) == [_one(e, created) for e in events]


def _one(e: TrackedEvent, created: timestamp_pb2.Timestamp) -> bytes:
    event = bus_pb2.EventTracked(
        event_id=e.event_id,
        email=e.email,
        metric=e.metric,
        occur_time=to_timestamp(EPOCH + timedelta(microseconds=e.occurred_us)),
    )
    set_body(event, e.body_field, e.body)
    return delivery(
        id=e.event_id,
        kind=bus_pb2.KIND_EVENT_TRACKED,
        contact_key=e.contact_key,
        sequence=0,
        payload=event,
        created=created,
    ).SerializeToString()


def test_wire_size_counts_what_the_server_counts(small_nats: NatsServer) -> None:
    """A message of exactly max_payload by wire_size is stored; one byte more
    and the server closes the connection (nats-py's own check counts only the
    payload, so it sends it)."""
    headers = {MSG_ID_HEADER: "exact"}
    exact = b"x" * (SMALL_MAX_PAYLOAD - wire_size(b"", headers))
    assert wire_size(exact, headers) == SMALL_MAX_PAYLOAD

    async def main() -> None:
        nc = await nats.connect(small_nats.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="SIZES", subjects=["sizes"]))
        ack = await js.publish("sizes", exact, headers=headers)
        assert ack.seq == 1
        await nc.publish("sizes", exact + b"x", headers={MSG_ID_HEADER: "over!"})
        await until_true(lambda: nc.is_closed)
        assert "maximum payload" in str(nc.last_error)

    asyncio.run(main())
