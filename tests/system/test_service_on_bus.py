"""The service's half of the bus, against a real nats-server: fast path,
outbox relay and the event-log writer (no dispatcher here)."""

from __future__ import annotations

from marketing.v1 import service_pb2 as pb

from service.common.validation import email_key
from tests.builders import placed_order, upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email


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
            k=email_key(email),
        )
    )


def test_finished_outbox_rows_are_pruned_after_retention(bus_harness: ServiceHarness) -> None:
    from datetime import UTC, datetime, timedelta

    from service.deliveries import outbox

    old, recent = datetime.now(UTC) - timedelta(days=3), datetime.now(UTC)
    key = email_key(unique_email())
    for completed in (old, recent):
        bus_harness.sql(
            "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status, created_at, "
            "completed_at) VALUES (gen_random_uuid(), :k, 'contact.upserted', '{}', 'COMPLETED', "
            ":t, :t)",
            k=key,
            t=completed,
        )

    async def prune() -> int:
        async with bus_harness.db.transaction() as session:
            return await outbox.prune_completed(
                session, before=datetime.now(UTC) - timedelta(days=1)
            )

    assert bus_harness.run(prune()) >= 1
    left = bus_harness.sql(
        "SELECT completed_at FROM marketing_outbox WHERE contact_key = :k", k=key
    )
    assert [row.completed_at for row in left] == [recent]
