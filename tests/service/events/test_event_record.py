"""The bus form of an event: the fast path (EventRecord.bus_event, reusing the
encoded payload) and the relay (the outbox row's JSON form) publish the same
EventTracked."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing_runtime.envelope import TrackedEvent, parse_delivery, serialized_events
from marketing_runtime.legacy import payload_from_json
from marketing_runtime.timestamps import to_timestamp

from service.events.event_log import EventRecord

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100)
@given(payload=st.dictionaries(st.text(), json_values, max_size=5), metric=st.text(min_size=1))
def test_fast_path_and_relay_publish_the_same_event(
    payload: dict[str, object], metric: str
) -> None:
    base = EventRecord(
        event_id="e-1",
        email="ada@example.com",
        contact_key="k",
        metric=metric,
        payload=payload,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    )
    encoded = json.dumps(payload).encode()
    spliced = dataclasses.replace(base, payload_json=encoded)
    assert spliced.bus_event().properties_json == encoded  # reused, not encoded again
    (message,) = serialized_events([spliced.bus_event()], to_timestamp(base.occurred_at))
    fast = parse_delivery(message).event_tracked
    stored = json.loads(json.dumps(base.delivery_payload()))  # as the outbox row comes back
    relayed = payload_from_json(bus_pb2.KIND_EVENT_TRACKED, stored)
    assert json.loads(fast.properties_json) == json.loads(relayed.properties_json) == payload
    fast.ClearField("properties_json")
    relayed.ClearField("properties_json")
    assert fast == relayed
    assert fast.occur_time == to_timestamp(base.occurred_at)


def test_bus_event_encodes_the_payload_when_not_given() -> None:
    record = EventRecord(
        event_id="e-2",
        email="ada@example.com",
        contact_key="k",
        metric="m",
        payload={"a": 1},
        occurred_at=datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
    )
    assert record.bus_event() == TrackedEvent(
        "e-2", "k", "ada@example.com", "m", 1_000_000, b'{"a":1}'
    )
