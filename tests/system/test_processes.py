"""Processes failing: a dispatcher killed mid-batch, nats-server restarted,
two replicas sharing the work, a graceful stop; against each provider's sandbox.

ActiveCampaign takes one tracked event per call at 5 a second: it gets tens of events where
Klaviyo gets hundreds. And it has no idempotency key for tracked events, so there a
redelivered event can be recorded twice (README, "What can repeat with ActiveCampaign"):
placed orders, looked up by their order id before they are written, arrive exactly once."""

from __future__ import annotations

import re
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from marketing.v1 import service_pb2 as pb

from tests.builders import product_viewed, upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.processes import DispatcherProcess, NatsServer, free_port
from tests.system.provider_state import ActiveCampaignProvider, SystemProvider, order_event

ACK_WAIT_S = "6"  # above the hanging call's 5 s, which the replica keeps alive meanwhile


def _sized(provider: SystemProvider, klaviyo: int, activecampaign: int) -> int:
    """How many events a test sends: ActiveCampaign's take one call each."""
    return klaviyo if provider.name == "klaviyo" else activecampaign


@pytest.fixture
def replicas(nats_server: NatsServer) -> Iterator[list[DispatcherProcess]]:
    started: list[DispatcherProcess] = []
    yield started
    for replica in started:
        replica.stop()


def _start(
    replicas: list[DispatcherProcess], nats: NatsServer, provider: SystemProvider, **settings: str
) -> DispatcherProcess:
    replica = provider.dispatcher(nats.url, **settings).start()
    replicas.append(replica)
    return replica


def _track(harness: ServiceHarness, count: int, batch: int = 500) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, batch):
        events = [
            product_viewed(unique_email(), product_id=f"p{i}")
            for i in range(start, min(start + batch, count))
        ]
        response = harness.stub.TrackEvents(pb.TrackEventsRequest(events=events))
        ids += [r.event_id for r in response.results]
    return ids


def _completed(harness: ServiceHarness, ids: list[str]) -> bool:
    done = harness.scalar(
        "SELECT count(*) FROM marketing_event_log WHERE id = ANY(:ids) AND status = 'COMPLETED'",
        ids=ids,
    )
    return bool(done == len(ids))


def _delivered_exactly_once(provider: SystemProvider, ids: list[str]) -> None:
    counts = provider.event_counts()
    assert {i: counts.get(i, 0) for i in ids} == dict.fromkeys(ids, 1)


def _delivered_at_least_once(provider: SystemProvider, ids: list[str]) -> int:
    """Each event received, once or more; how many submissions were repeats."""
    counts = provider.event_counts()
    missing = [i for i in ids if not counts.get(i)]
    assert not missing, f"{len(missing)} of {len(ids)} events never arrived"
    return sum(counts[i] - 1 for i in ids)


def _order_ids(harness: ServiceHarness, count: int) -> list[str]:
    orders = [order_event(unique_email()) for _ in range(count)]
    response = harness.stub.TrackEvents(pb.TrackEventsRequest(events=orders))
    return [r.event_id for r in response.results]


def test_dispatcher_killed_mid_batch_loses_and_duplicates_nothing(
    bus_harness: ServiceHarness,
    provider: SystemProvider,
    nats_server: NatsServer,
    replicas: list[DispatcherProcess],
) -> None:
    # The first event call hangs, then fails: the dispatcher dies while holding it.
    # One batch in hand, so the batch it holds is all the work: with two, the
    # other batch could be accepted by the provider and the process killed before
    # its acks went out, a redelivery the provider dedupes by unique_id but the
    # sandbox, counting submissions, would show as a duplicate.
    provider.add_fault(path=provider.event_path, status=503, latency_ms=5000, times=1)
    # A short ack wait: what the killed replica held comes back in seconds, not 30.
    first = _start(
        replicas, nats_server, provider, event_concurrency="1", event_ack_wait_s=ACK_WAIT_S
    )
    orders = _order_ids(bus_harness, _sized(provider, 20, 5))
    ids = _track(bus_harness, _sized(provider, 300, 20))
    assert_eventually(lambda: not provider.faults_pending())  # the faulty call is in progress
    first.kill()
    killed_at = datetime.now(UTC)
    _start(replicas, nats_server, provider, event_ack_wait_s=ACK_WAIT_S)
    assert_eventually(lambda: _completed(bus_harness, orders + ids), timeout_s=120)
    _delivered_exactly_once(provider, orders)
    if isinstance(provider, ActiveCampaignProvider):
        # Only what the killed replica had sent may go out again.
        _delivered_at_least_once(provider, ids)
        arrivals = provider.tracked_arrivals()
        repeated = {i for i in ids if len(arrivals[i]) > 1}
        assert all(arrivals[i][0] < killed_at for i in repeated), repeated
    else:
        _delivered_exactly_once(provider, ids)


def test_nats_restart_while_events_arrive(
    bus_harness: ServiceHarness,
    provider: SystemProvider,
    nats_server: NatsServer,
    replicas: list[DispatcherProcess],
) -> None:
    _start(replicas, nats_server, provider)
    count = _sized(provider, 50, 6)
    before = _track(bus_harness, count, batch=10)
    nats_server.stop()
    during = _track(bus_harness, count, batch=10)  # durable in PostgreSQL meanwhile
    nats_server.start()
    after = _track(bus_harness, count, batch=10)
    ids = before + during + after
    fell_back = bus_harness.scalar(
        # A payload holds the event id as its UTF-8 bytes.
        "SELECT count(*) FROM marketing_outbox o WHERE EXISTS (SELECT 1 FROM "
        "unnest(CAST(:ids AS text[])) AS i(id) "
        "WHERE position(convert_to(i.id, 'UTF8') in o.payload) > 0)",
        ids=during,
    )
    assert fell_back == len(during), "with NATS down, events are kept in the outbox"
    assert_eventually(lambda: _completed(bus_harness, ids), timeout_s=120)
    _delivered_exactly_once(provider, ids)


def _deliveries(metrics_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    found = re.findall(
        r'^marketing_dispatcher_deliveries_total\{kind="event.tracked",'
        r'outcome="OUTCOME_DELIVERED"\} (\S+)$',
        text,
        re.M,
    )
    return float(found[0]) if found else 0.0


def test_two_replicas_share_the_work(
    bus_harness: ServiceHarness,
    provider: SystemProvider,
    nats_server: NatsServer,
    replicas: list[DispatcherProcess],
) -> None:
    ports = [free_port(), free_port()]
    for port in ports:
        _start(
            replicas,
            nats_server,
            provider,
            metrics_address=f"127.0.0.1:{port}",
            event_batch_size=str(_sized(provider, 50, 4)),
        )
    ids = _track(bus_harness, _sized(provider, 2000, 40))
    assert_eventually(lambda: _completed(bus_harness, ids), timeout_s=120)
    _delivered_exactly_once(provider, ids)
    shares = [_deliveries(port) for port in ports]
    assert all(share > 0 for share in shares), shares
    assert sum(shares) >= len(ids)


def test_sighup_leaves_a_dispatcher_running_and_sigterm_stops_it_cleanly(
    bus_harness: ServiceHarness,
    provider: SystemProvider,
    nats_server: NatsServer,
    replicas: list[DispatcherProcess],
) -> None:
    replica = _start(replicas, nats_server, provider)
    ids = _track(bus_harness, _sized(provider, 100, 10))
    assert_eventually(lambda: _completed(bus_harness, ids))
    replica.signal(signal.SIGHUP)  # nothing to reload; it must not end the replica
    more = _track(bus_harness, _sized(provider, 100, 10))
    assert_eventually(lambda: _completed(bus_harness, more))
    assert replica.terminate() == 0


def _superseded_events(metrics_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    found = re.findall(
        r'^marketing_dispatcher_deliveries_total\{kind="event.tracked",'
        r'outcome="OUTCOME_SUPERSEDED"\} (\S+)$',
        text,
        re.M,
    )
    return float(found[0]) if found else 0.0


def test_events_still_in_flight_do_not_recreate_an_erased_person(
    bus_harness: ServiceHarness,
    provider: SystemProvider,
    nats_server: NatsServer,
    replicas: list[DispatcherProcess],
) -> None:
    port = free_port()
    _start(replicas, nats_server, provider, metrics_address=f"127.0.0.1:{port}")
    email = unique_email()
    name = bus_harness.stub.UpsertContact(upsert(email)).contact.name
    assert_eventually(
        lambda: bus_harness.stub.GetContact(pb.GetContactRequest(name=name)).contact.HasField(
            "last_sync_time"
        )
    )
    assert provider.holds(email)
    # The event's first attempt hangs, then fails; the erasure overtakes it.
    provider.add_fault(path=provider.event_path, status=503, latency_ms=1500, times=1)
    event = product_viewed(email, event_id=f"late-{uuid.uuid4()}")
    bus_harness.stub.TrackEvent(pb.TrackEventRequest(event=event))
    assert_eventually(lambda: not provider.faults_pending())
    bus_harness.stub.DeleteContact(pb.DeleteContactRequest(name=name))
    assert_eventually(lambda: provider.erased(email))
    assert_eventually(lambda: _superseded_events(port) >= 1)
    assert event.event_id not in provider.event_counts()
