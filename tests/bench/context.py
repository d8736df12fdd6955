"""What every phase needs: the running stack, clients, and where results go."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client

from tests.bench import bus, database
from tests.bench.config import BenchConfig
from tests.bench.report import Row
from tests.bench.sandbox_api import SandboxApi
from tests.bench.stack import Stack


@dataclass
class Bench:
    cfg: BenchConfig
    stack: Stack
    nc: Client
    sandbox: SandboxApi
    service: Any  # MarketingServiceStub on the service
    echo: Any  # the same stub on the echo server
    tag: str  # makes this run's event ids unique
    # Each provider's sandbox with rate limits on (see Stack.limited_sandboxes).
    provider_sandboxes: dict[str, SandboxApi] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)  # accepted while no dispatcher ran

    def note(self, message: str) -> None:
        print(f"  {message}", flush=True)

    async def settle(self, *, dispatcher: bool, label: str) -> float:
        """Wait until the service (and the dispatcher) have worked off the bus,
        so the next phase is not measured against leftover work."""
        consumers = list(bus.SERVICE_CONSUMERS)
        if dispatcher:
            consumers += bus.DISPATCH_CONSUMERS
        started = time.perf_counter()
        waited = await bus.settle(self.nc, consumers, self.cfg.timeout_s)
        self.note(f"settled after {label} in {time.perf_counter() - started:.1f} s")
        return waited

    async def quiet_database(self, label: str) -> None:
        """Wait until PostgreSQL's autovacuum has finished what the phases before
        left it (the provider phase's million events, written to the event log
        by the service, keep it busy for minutes), so that a phase timing the
        database's own work is not measured against another's clean-up."""
        started = time.perf_counter()
        tables = await database.wait_for_autovacuum(self.stack.database_url, self.cfg.timeout_s)
        if tables:
            waited = time.perf_counter() - started
            self.note(f"autovacuum of {', '.join(sorted(tables))} done in {waited:.1f} s ({label})")
