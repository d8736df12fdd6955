"""The bus form of an event, built by splicing the already encoded payload."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from service.events.event_log import EventRecord

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=100)
@given(payload=st.dictionaries(st.text(), json_values, max_size=5), metric=st.text(min_size=1))
def test_spliced_json_equals_plain_encoding(payload: dict[str, object], metric: str) -> None:
    base = EventRecord(
        event_id="e-1",
        email="ada@example.com",
        contact_key="k",
        metric=metric,
        payload=payload,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    spliced = dataclasses.replace(base, payload_json=json.dumps(payload).encode())
    assert json.loads(spliced.delivery_json()) == json.loads(base.delivery_json())
    assert json.loads(base.delivery_json()) == base.delivery_payload() | {
        "occur_time": "2026-01-02T03:04:05+00:00"
    }
