"""Results split over messages that each fit the server's max_payload."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2

from dispatcher.outcomes import results_messages
from service.bus.envelope import MSG_ID_HEADER, wire_size

_RESULTS = st.lists(
    st.builds(
        bus_pb2.DeliveryResult,
        delivery_id=st.text(min_size=1, max_size=80),
        kind=st.sampled_from(["event.tracked", "contact.upserted"]),
        contact_key=st.text(max_size=64),
        error=st.text(max_size=20_000),
        attempts=st.integers(0, 20),
    ),
    max_size=60,
)


@given(results=_RESULTS, limit=st.integers(16 * 1024, 100_000))
def test_each_message_fits_and_together_they_hold_every_result_in_order(
    results: list[bus_pb2.DeliveryResult], limit: int
) -> None:
    messages = results_messages(results, limit)
    header = {MSG_ID_HEADER: str(uuid.uuid4())}
    assert all(wire_size(m, header) <= limit for m in messages)
    parsed = [r for m in messages for r in bus_pb2.DeliveryResults.FromString(m).results]
    assert [r.delivery_id for r in parsed] == [r.delivery_id for r in results]
    for got, sent in zip(parsed, results, strict=True):
        assert got.error == sent.error or got.error.startswith(sent.error[:1000])


def test_a_batch_that_fits_is_one_message() -> None:
    results = [bus_pb2.DeliveryResult(delivery_id=f"e-{i}") for i in range(1000)]
    (message,) = results_messages(results, 1024 * 1024)
    assert len(bus_pb2.DeliveryResults.FromString(message).results) == 1000
