"""Deliveries serialized in bulk are the very bytes `delivery` gives one by one."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from service.bus.envelope import delivery, serialized_deliveries
from service.storage.outbox import OutboxKind
from service.timestamps import to_timestamp

_ITEMS = st.lists(
    st.tuples(st.text(min_size=1, max_size=20), st.text(max_size=64), st.binary(max_size=200)),
    max_size=20,
)


@settings(max_examples=100)
@given(items=_ITEMS, created_s=st.integers(0, 4_000_000_000))
def test_bulk_serialization_matches_one_by_one(
    items: list[tuple[str, str, bytes]], created_s: int
) -> None:
    created = to_timestamp(datetime.fromtimestamp(created_s, UTC))
    one_by_one = [
        delivery(
            id=id_,
            kind=OutboxKind.EVENT_TRACKED,
            contact_key=key,
            sequence=0,
            payload=payload,
            created=created,
        ).SerializeToString()
        for id_, key, payload in items
    ]
    bulk = serialized_deliveries(OutboxKind.EVENT_TRACKED, items, created)
    assert list(bulk) == one_by_one
