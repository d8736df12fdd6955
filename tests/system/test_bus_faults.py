"""Faults of the bus itself, seen from outside: an accepted event too large
for the server's max_payload, and connections the server closes.

The module has its own nats-server (a small max_payload, so that an
oversized event is small too), its own database (so that no other service's
relay publishes its outbox rows elsewhere) and its own service; dispatchers
are started per test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from marketing.v1 import service_pb2 as pb
from marketing_runtime.envelope import NATS_MAX_PAYLOAD

from dispatcher.main import Dispatcher, build_provider
from dispatcher.settings import DispatcherSettings
from tests.builders import custom, upsert
from tests.harness import ServiceHarness, assert_eventually, own_database, unique_email
from tests.processes import SMALL_MAX_PAYLOAD, DispatcherProcess, NatsServer, kill_connection
from tests.system.provider_state import SystemProvider, order_event


@pytest.fixture(scope="module")
def small_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats-small"), max_payload=SMALL_MAX_PAYLOAD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def database(database_url: str) -> Iterator[str]:
    with own_database(database_url, "bus_faults") as url:
        yield url


@pytest.fixture(scope="module")
def service(database: str, small_nats: NatsServer) -> Iterator[ServiceHarness]:
    with ServiceHarness.start(database, small_nats.url) as running:
        yield running


@pytest.fixture
def dispatcher(small_nats: NatsServer, provider: SystemProvider) -> Iterator[DispatcherProcess]:
    replica = provider.dispatcher(small_nats.url).start()
    yield replica
    replica.stop()


def test_an_event_too_large_for_the_bus_waits_failed_and_delivery_goes_on(
    service: ServiceHarness,
    dispatcher: DispatcherProcess,
    provider: SystemProvider,
    small_nats: NatsServer,
) -> None:
    bus = service.bus
    assert bus is not None
    connection = assert_eventually(lambda: bus.nc)
    email = unique_email()
    # Eight 10,000-character strings: far inside the provider's limits, past 64 KiB.
    big = custom(email, **{f"review_{i}": "x" * 10_000 for i in range(8)})
    big_id = service.stub.TrackEvent(pb.TrackEventRequest(event=big)).event_id
    later_id = service.stub.TrackEvent(pb.TrackEventRequest(event=order_event(email))).event_id
    service.stub.Unsubscribe(pb.UnsubscribeRequest(email=email, reason="too much mail"))

    assert_eventually(lambda: provider.event_counts().get(later_id) == 1)
    assert_eventually(lambda: provider.consent(email)["suppressed"])
    assert _outbox_rows_of(service, later_id) == 0, "the later event took the fast path"
    assert bus.nc is connection, "the service kept its connection"
    assert_eventually(lambda: _status(service, big_id) == "FAILED")
    failed = service.stub.ListFailedDeliveries(pb.ListFailedDeliveriesRequest(page_size=1000))
    (mine,) = [f for f in failed.failed_deliveries if f.event_id == big_id]
    assert "max_payload" in mine.error and str(SMALL_MAX_PAYLOAD) in mine.error
    assert_eventually(lambda: _pending(service) == 0)
    assert big_id not in provider.event_counts()

    # Raised as the error says, the failed delivery can be re-driven.
    _restart_with_max_payload(small_nats, NATS_MAX_PAYLOAD, service)
    try:
        retried = service.stub.RetryFailedDeliveries(
            pb.RetryFailedDeliveriesRequest(names=[mine.name])
        )
        assert retried.retried == 1
        assert_eventually(lambda: _status(service, big_id) == "COMPLETED", timeout_s=60)
        assert provider.event_counts()[big_id] == 1
    finally:
        _restart_with_max_payload(small_nats, SMALL_MAX_PAYLOAD, service)


def test_the_service_resumes_on_a_new_connection_when_the_server_closes_its_own(
    service: ServiceHarness, dispatcher: DispatcherProcess, provider: SystemProvider
) -> None:
    bus = service.bus
    assert bus is not None
    old = assert_eventually(lambda: bus.nc)
    service.run(kill_connection(old))
    assert_eventually(lambda: old.is_closed)
    assert_eventually(lambda: bus.nc not in (None, old))

    email = unique_email()
    event_id = service.stub.TrackEvent(pb.TrackEventRequest(event=order_event(email))).event_id
    assert _outbox_rows_of(service, event_id) == 0, "the fast path acknowledged it"
    # Delivered, and its result recorded: the service's consumers resumed too.
    assert_eventually(lambda: _status(service, event_id) == "COMPLETED")
    service.stub.UpsertContact(upsert(email, first_name="Ada"))
    assert_eventually(lambda: provider.mentioning(email, "Ada"))
    assert_eventually(lambda: _pending(service) == 0)


def test_the_dispatcher_resumes_on_a_new_connection_when_the_server_closes_its_own(
    service: ServiceHarness, provider: SystemProvider, small_nats: NatsServer
) -> None:
    """A dispatcher in this process (to reach its connection), the only one."""
    settings = DispatcherSettings(
        nats_url=small_nats.url,
        sandbox_url=provider.base_url,
        metrics_address="",
        linger_s=0.05,
        lease_ttl_s=3,
        **provider.settings,  # type: ignore[arg-type]
    )
    replica = Dispatcher(settings, build_provider(settings))
    running = asyncio.run_coroutine_threadsafe(replica.run(), service.loop)
    try:
        old = assert_eventually(lambda: replica.bus.nc)
        service.run(kill_connection(old))
        assert_eventually(lambda: old.is_closed)
        assert_eventually(lambda: replica.bus.nc not in (None, old))

        email = unique_email()
        event = order_event(email)
        event_id = service.stub.TrackEvent(pb.TrackEventRequest(event=event)).event_id
        assert_eventually(lambda: _status(service, event_id) == "COMPLETED")
        service.stub.UpsertContact(upsert(email, first_name="Grace"))
        assert_eventually(lambda: provider.mentioning(email, "Grace"))
        assert not running.done(), "the replica kept running"
    finally:
        service.loop.call_soon_threadsafe(replica.shutdown)
        running.result(timeout=60)
        service.run(replica.close())


def _restart_with_max_payload(server: NatsServer, limit: int, service: ServiceHarness) -> None:
    server.stop()
    server.max_payload = limit
    server.start()
    assert_eventually(lambda: service.bus and service.bus.max_payload == limit)


def _status(service: ServiceHarness, event_id: str) -> str | None:
    return service.scalar("SELECT status FROM marketing_event_log WHERE id = :id", id=event_id)


def _outbox_rows_of(service: ServiceHarness, event_id: str) -> int:
    return int(
        service.scalar(
            "SELECT count(*) FROM marketing_outbox "
            "WHERE position(convert_to(:id, 'UTF8') in payload) > 0",
            id=event_id,
        )
    )


def _pending(service: ServiceHarness) -> int:
    return int(service.scalar("SELECT count(*) FROM marketing_outbox WHERE status = 'PENDING'"))
