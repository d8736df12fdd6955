"""Results split over messages that each fit the server's max_payload, and dead
letters that fit it too (their payload left out when it would not)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER, wire_size

from dispatcher.delivery.outcomes import Outcome, Reporter, dead_letter, results_messages
from tests.processes import SMALL_MAX_PAYLOAD, NatsServer

_RESULTS = st.lists(
    st.builds(
        bus_pb2.DeliveryResult,
        delivery_id=st.text(min_size=1, max_size=80),
        type=st.sampled_from([bus_pb2.KIND_EVENT_TRACKED, bus_pb2.KIND_CONTACT_UPSERTED]),
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


def _failed(payload_bytes: int, error: str = "provider said 400") -> Outcome:
    delivery = bus_pb2.Delivery(
        id=f"dead-{uuid.uuid4()}",
        type=bus_pb2.KIND_EVENT_TRACKED,
        contact_key="k" * 64,
        event_tracked=bus_pb2.EventTracked(
            event_id="e", properties_json=b'{"p":"' + b"x" * payload_bytes + b'"}'
        ),
    )
    return Outcome(delivery, bus_pb2.OUTCOME_FAILED, attempts=7, error=error)


def test_a_dead_letter_too_large_for_the_bus_goes_without_its_payload(tmp_path: Path) -> None:
    """The delivery fitted the bus, the letter around it (error, attempts,
    time) does not: published without the payload, saying so, and the
    connection stays up."""
    server = NatsServer(tmp_path / "nats", max_payload=SMALL_MAX_PAYLOAD)
    server.start()
    outcome = _failed(SMALL_MAX_PAYLOAD - 200, error="provider said 400: " + "e" * 300)
    assert wire_size(outcome.delivery.SerializeToString()) < SMALL_MAX_PAYLOAD

    async def main() -> bus_pb2.DeadLetter:
        bus = Bus(server.url, name="test-outcomes")
        bus.start()
        try:
            assert await bus.wait_ready(30)
            nc, js = bus.nc, bus.js
            assert nc is not None and js is not None
            await Reporter(bus, lambda: datetime.now(UTC)).report([outcome])
            stored = await js.get_last_msg(
                topology.DEAD_STREAM, topology.dead_subject("event.tracked")
            )
            assert not nc.is_closed and bus.nc is nc  # the server did not close it
            assert stored.data is not None
            return bus_pb2.DeadLetter.FromString(stored.data)
        finally:
            await bus.close()

    try:
        letter = asyncio.run(main())
    finally:
        server.stop()
    assert letter.delivery.id == outcome.delivery.id and letter.attempts == 7
    assert letter.delivery.WhichOneof("payload") is None
    assert letter.error.startswith(outcome.error + " (payload left out: bus message of ")
    assert f"max_payload of {SMALL_MAX_PAYLOAD} bytes" in letter.error


@given(
    payload_bytes=st.integers(0, 70_000),
    error=st.text(max_size=80_000),
    limit=st.integers(32 * 1024, 80 * 1024),
)
def test_every_dead_letter_fits_and_keeps_its_payload_when_it_can(
    payload_bytes: int, error: str, limit: int
) -> None:
    outcome = _failed(payload_bytes, error)
    headers = {MSG_ID_HEADER: f"{outcome.delivery.id}.dead.7"}
    data = dead_letter(outcome, Timestamp(seconds=1_800_000_000), limit, headers)
    assert wire_size(data, headers) <= limit
    letter = bus_pb2.DeadLetter.FromString(data)
    whole = bus_pb2.DeadLetter(
        delivery=outcome.delivery,
        error=error,
        attempts=7,
        fail_time=Timestamp(seconds=1_800_000_000),
    )
    if wire_size(whole.SerializeToString(), headers) <= limit:
        assert letter == whole
    else:
        assert letter.delivery.WhichOneof("payload") is None
        assert "(payload left out: " in letter.error


def test_results_and_dead_letters_are_stamped_by_the_reporters_clock(
    own_nats: NatsServer,
) -> None:
    """Finish and fail times come from the injected clock, not from the wall."""
    when = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    delivered = Outcome(
        bus_pb2.Delivery(id=f"ok-{uuid.uuid4()}", type=bus_pb2.KIND_EVENT_TRACKED),
        bus_pb2.OUTCOME_DELIVERED,
        attempts=1,
    )
    failed = _failed(10, error="refused")

    async def main() -> tuple[bus_pb2.DeliveryResults, bus_pb2.DeadLetter]:
        bus = Bus(own_nats.url, name="test-outcomes-clock")
        bus.start()
        try:
            assert await bus.wait_ready(30)
            assert bus.js is not None
            await Reporter(bus, lambda: when).report([delivered, failed])
            results = await bus.js.get_last_msg(topology.RESULTS_STREAM, topology.RESULTS_SUBJECT)
            letter = await bus.js.get_last_msg(
                topology.DEAD_STREAM, topology.dead_subject("event.tracked")
            )
            assert results.data is not None and letter.data is not None
            return (
                bus_pb2.DeliveryResults.FromString(results.data),
                bus_pb2.DeadLetter.FromString(letter.data),
            )
        finally:
            await bus.close()

    results, letter = asyncio.run(main())
    assert [r.delivery_id for r in results.results] == [delivered.delivery.id, failed.delivery.id]
    assert {r.finish_time.ToDatetime(tzinfo=UTC) for r in results.results} == {when}
    assert letter.delivery.id == failed.delivery.id
    assert letter.fail_time.ToDatetime(tzinfo=UTC) == when
    # A service of the previous release records results by the kind as text.
    assert [r.kind for r in results.results] == ["event.tracked", "event.tracked"]
    assert {r.type for r in results.results} == {bus_pb2.KIND_EVENT_TRACKED}
