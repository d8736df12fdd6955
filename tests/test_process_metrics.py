"""Each process's /metrics shows its own series only: a `marketing-dispatcher`
and a `marketing-service serve` process, each scraped over HTTP.

The shared runtime defines no metric of its own. Should it ever define one (the
state of the bus connection, say), both processes would show it, under a
`marketing_bus_` name; add that name to both pages' expectations below."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

import dispatcher.metrics
import service.metrics
from tests.processes import DispatcherProcess, NatsServer, free_port, wait_for_port

# What the names of each process's series start with (README, Operations).
SERVICE_PREFIXES = (
    "marketing_rpc_",
    "marketing_events_",
    "marketing_consent_",
    "marketing_unsubscribes",
    "marketing_reconcile",
    "marketing_segment_",
    "marketing_flow_",
    "marketing_timer",
    "marketing_engagement",
    "marketing_queue_",
    "marketing_preference_",
)
DISPATCHER_PREFIXES = ("marketing_dispatcher_",)


def _defined_in(module: ModuleType) -> set[str]:
    """The metric families a module defines, by their exposition name."""
    metrics = (value for value in vars(module).values() if isinstance(value, MetricWrapperBase))
    return {family.name for metric in metrics for family in metric.collect()}


def _scrape(address: str) -> set[str]:
    """The marketing_ families on a /metrics page (process_ and python_ ones are
    the client library's, on every page). A counter's creation time reads as a
    family of its own (`..._created`): it counts as the counter's."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as reply:
        page = reply.read().decode()
    families = {family.name for family in text_string_to_metric_families(page)}
    own = {name for name in families if name.startswith("marketing_")}
    return {name for name in own if name.removesuffix("_created") not in own - {name}}


@contextmanager
def _service(database_url: str, metrics_address: str, log: Path) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    env |= {
        "MARKETING_DATABASE_URL": database_url,
        "MARKETING_AUTH": "disabled",
        "MARKETING_NATS_URL": "",
        "MARKETING_GRPC_ADDRESS": f"127.0.0.1:{free_port()}",
        "MARKETING_METRICS_ADDRESS": metrics_address,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.main", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_each_process_shows_its_own_series_only(
    database_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    dispatcher_port, service_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{free_port()}"  # nothing is delivered here
    replica = DispatcherProcess(
        nats_server.url,
        sandbox_url,
        metrics_address=f"127.0.0.1:{dispatcher_port}",
        webhook_address=f"127.0.0.1:{free_port()}",  # its webhook receiver's series too
    )
    with _service(database_url, f"127.0.0.1:{service_port}", tmp_path / "service.log"):
        replica.start()
        try:
            wait_for_port(dispatcher_port, timeout_s=60)
            wait_for_port(service_port, timeout_s=60)
            dispatcher_page = _scrape(f"127.0.0.1:{dispatcher_port}")
            service_page = _scrape(f"127.0.0.1:{service_port}")
        finally:
            replica.stop()

    assert dispatcher_page == _defined_in(dispatcher.metrics)
    assert service_page == _defined_in(service.metrics)
    assert all(name.startswith(DISPATCHER_PREFIXES) for name in dispatcher_page)
    assert all(name.startswith(SERVICE_PREFIXES) for name in service_page)
    assert "marketing_dispatcher_deliveries" in dispatcher_page
    assert {
        "marketing_dispatcher_webhooks",
        "marketing_dispatcher_webhook_engagements",
        "marketing_dispatcher_webhook_seconds",
    } <= dispatcher_page
    assert "marketing_rpc_requests" in service_page
    assert "marketing_queue_items" in service_page  # for the alert rules (service/monitoring)
