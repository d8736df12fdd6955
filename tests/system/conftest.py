"""The whole system: the service (with the bus), a real nats-server, a provider's sandbox
over HTTP and dispatcher replicas as separate processes.

A test that asks for `provider` (or `dispatcher`, or `system`) runs against each provider's
sandbox, with rate limits on: `provider` is what that provider holds, in terms common to both
(tests/system/provider_state.py). A test about Klaviyo alone asks for `klaviyo` (the Klaviyo
sandbox itself) and, if it also needs the default replica, is marked `KLAVIYO_ONLY`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.sandbox.activecampaign import start_activecampaign_sandbox
from tests.dispatcher.providers.under_test import PROVIDERS, new_list
from tests.harness import ServiceHarness
from tests.processes import DispatcherProcess, NatsServer
from tests.system.leftovers import deliver_leftovers
from tests.system.provider_state import ActiveCampaignProvider, KlaviyoProvider, SystemProvider


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with start_sandbox() as running:
        yield running


@pytest.fixture(scope="session")
def klaviyo_provider(sandbox: Sandbox) -> KlaviyoProvider:
    return KlaviyoProvider(sandbox)


@pytest.fixture(scope="session")
def activecampaign_provider() -> Iterator[ActiveCampaignProvider]:
    with start_activecampaign_sandbox(import_delay_s=0.0) as running:
        yield ActiveCampaignProvider(running, new_list(running, "Newsletter"))


@pytest.fixture(scope="module", params=PROVIDERS)
def provider_under_test(request: pytest.FixtureRequest) -> SystemProvider:
    """Per module, so that one module's replica delivers to one provider at a time."""
    chosen: SystemProvider = request.getfixturevalue(f"{request.param}_provider")
    return chosen


@pytest.fixture
def provider(provider_under_test: SystemProvider) -> Iterator[SystemProvider]:
    """The provider with no recordings and no faults left from other tests."""
    provider_under_test.clear()
    yield provider_under_test
    provider_under_test.clear_faults()


@pytest.fixture
def klaviyo(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The Klaviyo sandbox with no recordings and no faults left from other tests."""
    sandbox.reset()
    sandbox.clear_faults()
    yield sandbox
    sandbox.clear_faults()


@pytest.fixture(scope="module")
def dispatcher(
    nats_server: NatsServer, bus_harness: ServiceHarness, provider_under_test: SystemProvider
) -> Iterator[DispatcherProcess]:
    if provider_under_test.name == "activecampaign":
        deliver_leftovers(bus_harness, nats_server.url)
    replica = provider_under_test.dispatcher(nats_server.url).start()
    yield replica
    replica.stop()


@pytest.fixture
def system(bus_harness: ServiceHarness, dispatcher: DispatcherProcess) -> ServiceHarness:
    return bus_harness
