"""Work that earlier tests left on the session's bus, delivered before a slow
provider's replica starts.

Tests that run the service without a dispatcher leave events and contact work on
the bus. ActiveCampaign takes one event or person per request at 5 requests/s, so
its replica would spend a test's whole deadline on them. They are delivered, not
purged: a purged event's log row would stay open for ever, and every later wait
for a quiet queue would fail."""

from __future__ import annotations

from marketing.v1 import service_pb2 as pb

from dispatcher.sandbox import start_sandbox
from tests.harness import ServiceHarness, assert_eventually
from tests.processes import DispatcherProcess


def queue_is_quiet(system: ServiceHarness) -> bool:
    """Nothing waiting for the bus and nothing on it waiting for the provider."""
    stats = system.stub.GetQueueStats(pb.GetQueueStatsRequest())
    return stats.pending == 0 and stats.in_flight == 0


def deliver_leftovers(system: ServiceHarness, nats_url: str, *, timeout_s: float = 180) -> None:
    """Run a replica against a Klaviyo sandbox of its own, without limits, until the
    queue is quiet, then stop it."""
    with start_sandbox(rate_limits=False) as sink:
        sweeper = DispatcherProcess(nats_url, sink.base_url).start()
        try:
            assert_eventually(lambda: queue_is_quiet(system), timeout_s=timeout_s)
        finally:
            sweeper.stop()
