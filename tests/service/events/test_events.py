"""Event tracking over gRPC against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import timestamp_pb2
from marketing.v1 import event_pb2
from marketing.v1 import service_pb2 as pb
from prometheus_client import REGISTRY

from service.common.validation import MAX_STRING_BYTES
from tests.builders import (
    added_to_cart,
    cart_abandoned,
    custom,
    money,
    placed_order,
    product_viewed,
    ts,
    upsert,
)
from tests.harness import ServiceHarness, field_violations, unique_email


@pytest.mark.parametrize(
    ("build", "metric"),
    [
        (product_viewed, "product_viewed"),
        (added_to_cart, "added_to_cart"),
        (placed_order, "placed_order"),
        (cart_abandoned, "cart_abandoned"),
        (custom, "review_submitted"),
    ],
)
def test_each_event_type_is_logged_and_queued(stub, harness: ServiceHarness, build, metric) -> None:
    email = unique_email()
    event_id = stub.TrackEvent(pb.TrackEventRequest(event=build(email))).event_id
    row = harness.sql(
        "SELECT type, status, data FROM marketing_event_log WHERE id = :id", id=event_id
    )[0]
    assert (row.type, row.status) == (metric, "PENDING")
    assert row.data["email"] == email
    ((kind, payload),) = harness.outbox_rows(email)
    assert kind == "event.tracked"
    assert (payload.event_id, payload.metric) == (event_id, metric)


def test_event_links_to_a_known_contact(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    contact = stub.UpsertContact(upsert(email)).contact
    event_id = stub.TrackEvent(pb.TrackEventRequest(event=product_viewed(email.upper()))).event_id
    assert str(
        harness.scalar("SELECT contact_id FROM marketing_event_log WHERE id = :id", id=event_id)
    ) == contact.name.removeprefix("contacts/")


def test_client_event_id_is_idempotent(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    event = placed_order(email, event_id=f"order-{email}")
    first = stub.TrackEvent(pb.TrackEventRequest(event=event))
    before = harness.table_counts()
    duplicates_before = _duplicates_counted()
    again = stub.TrackEvent(pb.TrackEventRequest(event=event))
    assert (first.event_id, first.duplicate) == (event.event_id, False)
    assert (again.event_id, again.duplicate) == (event.event_id, True)
    assert harness.table_counts() == before
    assert _duplicates_counted() == duplicates_before + 1


def _duplicates_counted() -> float:
    return REGISTRY.get_sample_value("marketing_events_duplicate_total") or 0.0


def test_batch_reports_duplicates_within_and_across_calls(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    seen = product_viewed(email, event_id=f"seen-{email}")
    stub.TrackEvent(pb.TrackEventRequest(event=seen))
    fresh = product_viewed(email, event_id=f"fresh-{email}")
    results = stub.TrackEvents(pb.TrackEventsRequest(events=[seen, fresh, fresh])).results
    assert [r.duplicate for r in results] == [True, False, True]
    assert len(harness.outbox_rows(email)) == 2


def test_batch_of_a_thousand(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    events = [product_viewed(email, product_id=f"p{i}") for i in range(1000)]
    results = stub.TrackEvents(pb.TrackEventsRequest(events=events)).results
    assert len({r.event_id for r in results}) == 1000
    assert len(harness.outbox_rows(email)) == 1000


def test_batch_is_all_or_nothing(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    good = product_viewed(email)
    bad = event_pb2.Event(email=email, placed_order=event_pb2.PlacedOrder())
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as err:
        stub.TrackEvents(pb.TrackEventsRequest(events=[good, good, bad]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == {
        "events[2].placed_order.order.order_id": "REQUIRED",
        "events[2].placed_order.order.total": "REQUIRED",
        "events[2].placed_order.order.lines": "REQUIRED",
    }
    assert harness.table_counts() == before


def test_batch_limits(stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.TrackEvents(pb.TrackEventsRequest())
    assert field_violations(err.value) == {"events": "REQUIRED"}
    too_many = [product_viewed(unique_email())] * 1001
    with pytest.raises(grpc.RpcError) as err:
        stub.TrackEvents(pb.TrackEventsRequest(events=too_many))
    assert field_violations(err.value) == {"events": "TOO_MANY_EVENTS"}


def _rejected(stub, event: event_pb2.Event) -> dict[str, str]:
    with pytest.raises(grpc.RpcError) as err:
        stub.TrackEvent(pb.TrackEventRequest(event=event))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return field_violations(err.value)


def test_rejects_unknown_or_missing_type(stub) -> None:
    assert _rejected(stub, event_pb2.Event(email=unique_email())) == {"event": "UNKNOWN_EVENT_TYPE"}


def test_rejects_missing_email_and_future_time(stub) -> None:
    future = ts(datetime.now(UTC) + timedelta(hours=1))
    assert _rejected(stub, product_viewed("", occur_time=future)) == {
        "event.email": "REQUIRED",
        "event.occur_time": "TIMESTAMP_IN_FUTURE",
    }


@pytest.mark.parametrize(
    "occur_time",
    [
        timestamp_pb2.Timestamp(seconds=253_402_300_800),  # past 9999-12-31
        timestamp_pb2.Timestamp(seconds=-62_135_596_801),  # before 0001-01-01
        timestamp_pb2.Timestamp(seconds=0, nanos=-1),
    ],
)
def test_rejects_timestamps_out_of_range(
    stub, harness: ServiceHarness, occur_time: timestamp_pb2.Timestamp
) -> None:
    before = harness.table_counts()
    assert _rejected(stub, product_viewed(unique_email(), occur_time=occur_time)) == {
        "event.occur_time": "INVALID_TIMESTAMP"
    }
    good = product_viewed(unique_email())
    bad = product_viewed(unique_email(), occur_time=occur_time)
    with pytest.raises(grpc.RpcError) as err:
        stub.TrackEvents(pb.TrackEventsRequest(events=[good, bad]))
    assert field_violations(err.value) == {"events[1].occur_time": "INVALID_TIMESTAMP"}
    assert harness.table_counts() == before


def test_small_clock_skew_is_tolerated(stub) -> None:
    soon = ts(datetime.now(UTC) + timedelta(seconds=30))
    assert stub.TrackEvent(
        pb.TrackEventRequest(event=product_viewed(unique_email(), occur_time=soon))
    ).event_id


def test_rejects_bad_line_items_and_money(stub) -> None:
    event = placed_order(unique_email())
    event.placed_order.order.lines[0].quantity = 0
    event.placed_order.order.lines[0].unit_price.CopyFrom(money(-3))
    event.placed_order.order.total.currency_code = "euro"
    assert _rejected(stub, event) == {
        "event.placed_order.order.lines[0].quantity": "OUT_OF_RANGE",
        "event.placed_order.order.lines[0].unit_price": "OUT_OF_RANGE",
        "event.placed_order.order.total.currency_code": "INVALID_CURRENCY",
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "REQUIRED"),
        ("Review Submitted", "INVALID_EVENT_NAME"),
        ("placed_order", "RESERVED_EVENT_NAME"),
        ("x" * 128, "INVALID_EVENT_NAME"),
    ],
)
def test_rejects_bad_custom_names(stub, name, reason) -> None:
    assert _rejected(stub, custom(unique_email(), name=name)) == {"event.custom.name": reason}


def test_rejects_event_the_provider_would_refuse(stub) -> None:
    big = custom(unique_email(), note="x" * (MAX_STRING_BYTES + 1))
    assert _rejected(stub, big) == {"event.custom.properties": "INVALID_PROPERTIES"}
    huge = custom(unique_email(), **{f"k{i}": "y" * 60_000 for i in range(90)})
    assert _rejected(stub, huge) == {"event.custom": "EVENT_TOO_LARGE"}
    wide = custom(unique_email(), **{f"k{i}": str(i) for i in range(401)})
    assert _rejected(stub, wide) == {"event.custom.properties": "TOO_MANY_PROPERTIES"}


def test_rejects_malformed_event_id(stub) -> None:
    assert _rejected(stub, product_viewed(unique_email(), event_id="has space")) == {
        "event.event_id": "INVALID_EVENT_ID"
    }
