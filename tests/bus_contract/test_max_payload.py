"""The largest event the service accepts fits the max_payload every nats-server
of ours runs with (README, NATS)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from marketing.bus.v1 import bus_pb2
from marketing_runtime.envelope import NATS_MAX_PAYLOAD, wire_size

from service.common.validation import MAX_EVENT_BYTES, MAX_STRING_BYTES
from service.deliveries import outbox
from service.events.event_log import EventRecord
from service.workers import relay


def test_the_largest_event_fits_the_max_payload_we_configure() -> None:
    """As large as validation lets an event be, in two-byte characters, as the
    relay publishes it after a manual re-drive (the longest message id)."""
    strings = MAX_EVENT_BYTES // (MAX_STRING_BYTES + 16)
    properties = {f"p{i:03}": "é" * (MAX_STRING_BYTES // 2) for i in range(strings)}
    record = EventRecord(
        event_id="e" * 255,
        email="a" * 64 + "@" + "b" * 189,
        contact_key="c" * 64,
        metric="m" * 255,
        payload={"name": "m" * 255, "properties": properties},
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        body_field="custom",
        body=bus_pb2.CustomEvent(
            name="m" * 255, properties_json=orjson.dumps(properties)
        ).SerializeToString(),
    )
    assert MAX_EVENT_BYTES - MAX_STRING_BYTES < len(orjson.dumps(properties)) <= MAX_EVENT_BYTES
    row = {
        "id": uuid.uuid4(),
        "seq": 2**62,
        "kind": outbox.EVENT_TRACKED,
        "contact_key": record.contact_key,
        "payload": record.bus_message().SerializeToString(),  # as the outbox row keeps it
        "created_at": record.occurred_at,
        "retry_count": 999,
    }
    _, (_, payload, _, _, headers) = relay._message(row, record.occurred_at)
    assert wire_size(payload, headers) <= NATS_MAX_PAYLOAD
