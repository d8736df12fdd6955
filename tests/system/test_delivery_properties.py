"""Correctness properties of delivery, checked with Hypothesis against the
running system (service, nats-server, a dispatcher process, the sandbox)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.v1 import event_pb2
from marketing.v1 import service_pb2 as pb

from dispatcher.delivery.retry import compute_backoff
from dispatcher.sandbox import Sandbox
from service.common.validation import email_key
from tests.builders import money, upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.processes import DispatcherProcess, NatsServer

BACKOFF_BASE_S = 0.02  # the seed's schedule, scaled down: 0.02, 0.04, 0.08 ... s
MAX_ATTEMPTS = 7
RETRYABLE = st.sampled_from([429, 500, 502, 503, 504])
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)


@pytest.fixture(scope="module")
def dispatcher(nats_server: NatsServer, sandbox: Sandbox) -> Iterator[DispatcherProcess]:
    """Overrides the default replica: same code, faster backoff schedule."""
    replica = DispatcherProcess(
        nats_server.url, sandbox.base_url, backoff_base_s=str(BACKOFF_BASE_S)
    ).start()
    yield replica
    replica.stop()


@pytest.fixture
def quiet(system: ServiceHarness) -> ServiceHarness:
    """Wait until earlier tests' work has drained, so faults hit only ours."""

    def drained() -> bool:
        stats = system.stub.GetQueueStats(pb.GetQueueStatsRequest())
        return stats.pending == 0 and stats.in_flight == 0

    assert_eventually(drained, timeout_s=180)
    return system


def _synced_import(provider: Sandbox, email: str, field: str, value: object) -> bool:
    for r in provider.requests("/api/profile-import"):
        attributes = r["body"]["data"]["attributes"]
        if attributes.get("email") == email and (
            attributes.get(field) == value or attributes.get("properties", {}).get(field) == value
        ):
            return True
    return False


# **Feature: marketing-automation, Property 2: Contact updates sync within time limit**
@settings(max_examples=100)
@given(tier=words, first_name=words)
def test_property_2_contact_updates_sync_within_five_minutes(
    quiet: ServiceHarness, provider: Sandbox, tier: str, first_name: str
) -> None:
    email = unique_email()
    quiet.stub.UpsertContact(upsert(email))
    updated = quiet.stub.UpsertContact(upsert(email, loyalty_tier=tier, first_name=first_name))
    assert_eventually(lambda: _synced_import(provider, email, "loyalty_tier", tier), timeout_s=300)
    assert _synced_import(provider, email, "first_name", first_name)
    synced = assert_eventually(
        lambda: (
            (
                c := quiet.stub.GetContact(pb.GetContactRequest(email=email)).contact
            ).last_sync_time.ToDatetime()
            >= updated.contact.update_time.ToDatetime()
            and c
        )
    )
    # Both times come from the service's clock, so the limit is checked on one clock.
    lag = synced.last_sync_time.ToDatetime() - updated.contact.update_time.ToDatetime()
    assert timedelta(0) <= lag <= timedelta(minutes=5)


def _recorded(provider: Sandbox, event_id: str) -> dict[str, object] | None:
    for r in provider.requests():
        for event in _events_in(r["body"]):
            if event.get("unique_id") == event_id:
                return event
    return None


def _events_in(body: dict[str, object]) -> list[dict[str, object]]:
    data = body.get("data", {})
    assert isinstance(data, dict)
    attributes = data.get("attributes", {})
    assert isinstance(attributes, dict)
    if data.get("type") == "event":
        return [attributes]
    found: list[dict[str, object]] = []
    bulk = attributes.get("events-bulk-create", {})
    for entry in bulk.get("data", []) if isinstance(bulk, dict) else []:
        events = entry["attributes"]["events"]["data"]
        found += [e["attributes"] for e in events]
    return found


def _track_and_check(
    system: ServiceHarness, provider: Sandbox, event: event_pb2.Event, metric: str
) -> dict[str, object]:
    event_id = system.stub.TrackEvent(pb.TrackEventRequest(event=event)).event_id
    recorded = assert_eventually(lambda: _recorded(provider, event_id), timeout_s=30)
    metric_name = recorded["metric"]["data"]["attributes"]["name"]  # type: ignore[index]
    assert metric_name == metric
    row = assert_eventually(
        lambda: system.sql(
            "SELECT created_at, processed_at FROM marketing_event_log "
            "WHERE id = :id AND status = 'COMPLETED'",
            id=event_id,
        )
    )
    # Accepted → acknowledged by the provider, on the service's clock.
    assert row[0].processed_at - row[0].created_at <= timedelta(seconds=30)
    return recorded


products = st.builds(
    event_pb2.Product,
    product_id=words,
    sku=words,
    title=words,
    categories=st.lists(words, max_size=3),
    price=st.integers(0, 10_000).map(money),
)


# **Feature: marketing-automation, Property 6: Product view events tracked**
@settings(max_examples=100)
@given(product=products)
def test_property_6_product_views_recorded_with_details(
    system: ServiceHarness, provider: Sandbox, product: event_pb2.Product
) -> None:
    event = event_pb2.Event(
        email=unique_email(), product_viewed=event_pb2.ProductViewed(product=product)
    )
    recorded = _track_and_check(system, provider, event, "product_viewed")
    details = recorded["properties"]["product"]  # type: ignore[index]
    assert details["product_id"] == product.product_id and details["title"] == product.title
    assert details["price"] == product.price.units


line_items = st.builds(
    event_pb2.LineItem,
    product_id=words,
    title=words,
    quantity=st.integers(1, 50),
    unit_price=st.integers(0, 1000).map(money),
)


# **Feature: marketing-automation, Property 7: Cart events tracked**
@settings(max_examples=100)
@given(item=line_items)
def test_property_7_add_to_cart_recorded_with_item(
    system: ServiceHarness, provider: Sandbox, item: event_pb2.LineItem
) -> None:
    event = event_pb2.Event(email=unique_email(), added_to_cart=event_pb2.AddedToCart(item=item))
    recorded = _track_and_check(system, provider, event, "added_to_cart")
    details = recorded["properties"]["item"]  # type: ignore[index]
    assert (details["product_id"], details["quantity"]) == (item.product_id, item.quantity)


# **Feature: marketing-automation, Property 8: Purchase events tracked**
@settings(max_examples=100)
@given(order_id=words, lines=st.lists(line_items, min_size=1, max_size=5))
def test_property_8_orders_recorded_with_value(
    system: ServiceHarness, provider: Sandbox, order_id: str, lines: list[event_pb2.LineItem]
) -> None:
    total = sum(line.unit_price.units * line.quantity for line in lines)
    order = event_pb2.Order(order_id=order_id, lines=lines, total=money(total))
    event = event_pb2.Event(email=unique_email(), placed_order=event_pb2.PlacedOrder(order=order))
    recorded = _track_and_check(system, provider, event, "placed_order")
    assert recorded["value"] == total and recorded["value_currency"] == "EUR"
    assert len(recorded["properties"]["order"]["lines"]) == len(lines)  # type: ignore[index]


# **Feature: marketing-automation, Property 5: Failed sync retries with backoff**
@settings(max_examples=100)
@given(failures=st.integers(0, MAX_ATTEMPTS + 1), status=RETRYABLE)
def test_property_5_failed_sync_retries_with_backoff(
    quiet: ServiceHarness, provider: Sandbox, failures: int, status: int
) -> None:
    provider.reset()
    provider.clear_faults()
    if failures:
        provider.add_fault(path="/api/profile-import", status=status, times=failures, retry_after=0)
    email = unique_email()
    quiet.stub.UpsertContact(upsert(email))
    key = email_key(email)
    final = assert_eventually(
        lambda: quiet.scalar(
            "SELECT status FROM marketing_outbox WHERE contact_key = :k "
            "AND status IN ('COMPLETED', 'FAILED')",
            k=key,
        )
    )
    attempts = [r for r in provider.rejections() if r["path"] == "/api/profile-import"]
    accepted = [
        r
        for r in provider.requests("/api/profile-import")
        if r["body"]["data"]["attributes"]["email"] == email
    ]
    if failures < MAX_ATTEMPTS:
        assert final == "COMPLETED" and len(accepted) == 1 and len(attempts) == failures
        times = [r["received_at"] for r in attempts] + [accepted[0]["received_at"]]
    else:
        assert final == "FAILED" and not accepted and len(attempts) == MAX_ATTEMPTS
        times = [r["received_at"] for r in attempts]
    stamps = [datetime.fromisoformat(t) for t in times]
    for n, (earlier, later) in enumerate(itertools.pairwise(stamps), start=1):
        assert (later - earlier).total_seconds() >= compute_backoff(n, base_s=BACKOFF_BASE_S)


# **Feature: marketing-automation, every accepted event reaches the provider exactly once**
@settings(max_examples=100)
@given(
    faults=st.lists(st.tuples(RETRYABLE, st.integers(1, 2)), max_size=3).filter(
        lambda fs: sum(times for _, times in fs) < MAX_ATTEMPTS
    ),
    count=st.integers(1, 30),
)
def test_events_reach_provider_exactly_once_under_faults(
    quiet: ServiceHarness, provider: Sandbox, faults: list[tuple[int, int]], count: int
) -> None:
    provider.clear_faults()
    for status, times in faults:
        provider.add_fault(path="/api/event", status=status, times=times, retry_after=0)
    events = [
        event_pb2.Event(email=unique_email(), custom=event_pb2.CustomEvent(name="ping"))
        for _ in range(count)
    ]
    ids = [r.event_id for r in quiet.stub.TrackEvents(pb.TrackEventsRequest(events=events)).results]

    def all_recorded() -> dict[str, int] | None:
        counts = provider.event_counts()
        return counts if all(i in counts for i in ids) else None

    counts = assert_eventually(all_recorded)
    assert [counts[i] for i in ids] == [1] * count, "each event accepted exactly once"
