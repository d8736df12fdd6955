"""The whole system: the service (with the bus), a real nats-server, the sandbox
provider over HTTP and dispatcher replicas as separate processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from tests.harness import ServiceHarness
from tests.processes import DispatcherProcess, NatsServer


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with start_sandbox() as running:
        yield running


@pytest.fixture
def provider(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox with no recordings and no faults left from other tests."""
    sandbox.reset()
    sandbox.clear_faults()
    yield sandbox
    sandbox.clear_faults()


@pytest.fixture(scope="module")
def dispatcher(nats_server: NatsServer, sandbox: Sandbox) -> Iterator[DispatcherProcess]:
    replica = DispatcherProcess(nats_server.url, sandbox.base_url).start()
    yield replica
    replica.stop()


@pytest.fixture
def system(
    bus_harness: ServiceHarness, dispatcher: DispatcherProcess, provider: Sandbox
) -> ServiceHarness:
    return bus_harness
