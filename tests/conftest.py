"""Shared fixtures: a real PostgreSQL (pgserver), migrated once per session, and
the real gRPC server on a free port, called through the generated stubs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from service.storage import migrate
from tests.harness import ServiceHarness, own_database, start_embedded_postgres
from tests.processes import NatsServer

settings.register_profile(
    "marketing",
    max_examples=100,
    deadline=None,  # real servers: timing is not what these tests are about
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile("marketing")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """MARKETING_TEST_DATABASE_URL selects an external server (a database the
    tests may fill); otherwise an embedded one lives for the session."""
    external = os.environ.get("MARKETING_TEST_DATABASE_URL")
    if external:
        migrate.upgrade(external)
        yield external
        return
    root: Path = tmp_path_factory.mktemp("pg")
    with start_embedded_postgres(root) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def harness(database_url: str) -> Iterator[ServiceHarness]:
    with ServiceHarness.start(database_url) as running:
        yield running


@pytest.fixture
def stub(harness: ServiceHarness):
    return harness.stub


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bus_harness(database_url: str, nats_server: NatsServer) -> Iterator[ServiceHarness]:
    """The service with the bus: fast path, relay, event-log writer, results.
    On a database of its own: its background writes must not reach the "nothing
    was written" checks of other tests (they count whole tables), whichever
    folder runs first."""
    with (
        own_database(database_url, "bus") as url,
        ServiceHarness.start(url, nats_server.url) as running,
    ):
        yield running
