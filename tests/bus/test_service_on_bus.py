"""The service's half of the bus, against a real nats-server: fast path,
outbox relay and the event-log writer (no dispatcher here)."""

from __future__ import annotations

from marketing.v1 import service_pb2 as pb

from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.service.builders import placed_order, upsert


def test_event_fast_path_is_logged_by_the_service(bus_harness: ServiceHarness) -> None:
    email = unique_email()
    event_id = bus_harness.stub.TrackEvent(pb.TrackEventRequest(event=placed_order(email))).event_id
    assert bus_harness.outbox_rows(email) == [], "the fast path writes no outbox row"
    status = assert_eventually(
        lambda: bus_harness.scalar(
            "SELECT status FROM marketing_event_log WHERE id = :id", id=event_id
        )
    )
    assert status == "PENDING"


def test_fast_path_duplicate_is_reported(bus_harness: ServiceHarness) -> None:
    event = placed_order(unique_email(), event_id=f"dup-{unique_email()}")
    first = bus_harness.stub.TrackEvent(pb.TrackEventRequest(event=event))
    again = bus_harness.stub.TrackEvent(pb.TrackEventRequest(event=event))
    assert (first.duplicate, again.duplicate) == (False, True)


def test_relay_publishes_outbox_rows(bus_harness: ServiceHarness) -> None:
    email = unique_email()
    bus_harness.stub.UpsertContact(upsert(email))
    assert_eventually(
        lambda: bus_harness.scalar(
            "SELECT status FROM marketing_outbox WHERE contact_key = :k AND status = 'IN_FLIGHT'",
            k=__import__("service.domain.validation", fromlist=["x"]).email_key(email),
        )
    )
