"""The system under test, every part its own process: embedded PostgreSQL,
nats-server with JetStream, the sandbox provider, the service, the dispatcher
(started and stopped per phase) and a no-op gRPC echo server for the baseline.
Everything started here is stopped on the way out, also on errors."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from service.access.callers import ALL_METHODS, caller_table
from service.devstack import LOCAL_SANDBOX_SKEW_S, nats_server_command
from service.storage import migrate
from tests.bench.cpus import processes_mentioning, with_descendants
from tests.bench.procs import Child
from tests.harness import start_embedded_postgres
from tests.processes import free_port, wait_for_port

# The providers whose sandboxes (limits on) the provider phases drive.
PROVIDERS = ("klaviyo", "activecampaign")


@dataclass
class Stack:
    root: Path
    database_url: str
    nats_url: str
    sandbox_url: str
    service_address: str
    echo_address: str
    token: str  # of the service's one caller, "bench"
    service: Child
    workers: Child
    base_env: dict[str, str]
    _exits: contextlib.ExitStack
    # Where a dispatcher replica takes the providers' webhooks, and their secret.
    webhook_address: str = ""
    webhook_secret: str = ""
    # Each provider's sandbox with its rate limits on, by provider name.
    limited_sandboxes: dict[str, str] = field(default_factory=dict)
    # The service's preference pages, and the key their links are signed with.
    preferences_url: str = ""
    preferences_key: str = ""
    helpers: list[Child] = field(default_factory=list)  # nats-server, sandboxes, echo server
    dispatcher: Child | None = None
    replicas: list[Child] = field(default_factory=list)
    replica_metrics: list[str] = field(default_factory=list)  # "" for a replica without
    # The rate-limited replicas' MARKETING_BUDGET_PROVIDER_SKEW_S (BenchConfig.provider_skew_s).
    provider_skew_s: float = LOCAL_SANDBOX_SKEW_S
    _dispatchers_started: int = field(default=0)

    def start_dispatcher(self) -> Child:
        """One dispatcher replica, with the product's default settings, on the
        sandbox without rate limits (the phases that measure our ceilings)."""
        assert self.dispatcher is None or not self.dispatcher.alive(), "one at a time"
        self.dispatcher = self._dispatcher("sandbox", self.sandbox_url)
        return self.dispatcher

    def start_replicas(self, count: int, provider: str, *, metrics: bool = False) -> list[Child]:
        """`count` replicas delivering to `provider`'s sandbox with limits on (which
        reads their clock: `provider_skew_s`). With `metrics`, each serves its own
        (`replica_metrics`: their addresses, in the replicas' order)."""
        url = self.limited_sandboxes[provider]
        skew = {"MARKETING_BUDGET_PROVIDER_SKEW_S": str(self.provider_skew_s)}
        self.replica_metrics = [f"127.0.0.1:{free_port()}" if metrics else "" for _ in range(count)]
        self.replicas = [
            self._dispatcher(provider, url, skew | {"MARKETING_METRICS_ADDRESS": address})
            for address in self.replica_metrics
        ]
        return self.replicas

    def wait_replicas_ready(self, timeout_s: float = 60.0) -> None:
        for child in self.replicas:
            child.wait_for_log("delivering to", timeout_s)

    def stop_replicas(self) -> None:
        for child in self.replicas:
            child.stop()
        self.replicas = []

    def _dispatcher(
        self, provider: str, sandbox_url: str, settings: dict[str, str] | None = None
    ) -> Child:
        self._dispatchers_started += 1
        env = {
            **self.base_env,
            "MARKETING_NATS_URL": self.nats_url,
            "MARKETING_PROVIDER": provider,
            "MARKETING_SANDBOX_URL": sandbox_url,
            "MARKETING_METRICS_ADDRESS": "",
            "MARKETING_WEBHOOK_ADDRESS": self.webhook_address,
            "KLAVIYO_WEBHOOK_SECRET": self.webhook_secret,
            "ACTIVECAMPAIGN_WEBHOOK_SECRET": self.webhook_secret,
            **(settings or {}),
        }
        name = f"dispatcher-{self._dispatchers_started}"
        child = Child(name, [sys.executable, "-m", "dispatcher.main"], env, self.root)
        self._exits.callback(child.kill)  # a no-op once stopped
        return child.start()

    def wait_dispatcher_ready(self, timeout_s: float = 60.0) -> None:
        assert self.dispatcher is not None
        self.dispatcher.wait_for_log("delivering to", timeout_s)

    def helper(self, name: str) -> Child:
        return next(child for child in self.helpers if child.name == name)

    def fresh_limited_sandbox(self, provider: str) -> None:
        """`provider`'s rate-limited sandbox started again at its address: a new
        account, holding nothing the phases before left it (a million profiles or
        more, which a reset keeps as the account's: they made its process's work
        per call dearer on the cores the measured pipeline shares)."""
        sandbox = self.helper(f"{provider}-sandbox")
        sandbox.stop()
        sandbox.start()
        port = httpx.URL(self.limited_sandboxes[provider]).port
        assert port is not None
        try:
            wait_for_port(port, timeout_s=60)
        except AssertionError as error:  # nothing listening: its log says why
            raise RuntimeError(f"{sandbox.name} did not start again:\n{sandbox.tail()}") from error

    def all_pids(self) -> list[int]:
        """Every process of the stack, and this one (the load generator);
        PostgreSQL's by its data directory."""
        children = [*self.helpers, self.service, self.workers, *self.replicas]
        if self.dispatcher is not None and self.dispatcher.alive():
            children.append(self.dispatcher)
        # The postmaster by its data directory, and the backends it forked.
        postgres = with_descendants(processes_mentioning(str(self.root / "pg")))
        return [*(c.pid for c in children), *postgres, os.getpid()]

    def stop_dispatcher(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None


def _child(exits: contextlib.ExitStack, child: Child) -> Child:
    exits.callback(child.kill)  # registered before start: even a failed start is cleaned up
    return child.start()


@contextlib.contextmanager
def running_stack(provider_skew_s: float) -> Iterator[Stack]:
    with (
        tempfile.TemporaryDirectory(prefix="marketing-bench-") as tmp,
        contextlib.ExitStack() as exits,
    ):
        root = Path(tmp)
        print(f"  logs and data in {root}", flush=True)
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("MARKETING_") and k != "GRPC_ENABLE_FORK_SUPPORT"
        }
        database_url = exits.enter_context(start_embedded_postgres(root / "pg"))
        migrate.upgrade(database_url)

        nats_port = free_port()
        nats_argv = nats_server_command(nats_port, root / "nats")
        nats = Child("nats-server", nats_argv, base_env, root)
        helpers = [_child(exits, nats)]
        wait_for_port(nats_port)
        nats_url = f"nats://127.0.0.1:{nats_port}"

        # The ceiling phases measure us, not the provider: their sandbox has its
        # rate limits switched off. The provider phases use one with limits on.
        sandbox_port = free_port()
        sandbox_env = {
            **base_env,
            "MARKETING_SANDBOX_ADDRESS": f"127.0.0.1:{sandbox_port}",
            "MARKETING_SANDBOX_RATE_LIMITS": "off",
        }
        sandbox_argv = [sys.executable, "-m", "dispatcher.sandbox"]
        helpers.append(_child(exits, Child("sandbox", sandbox_argv, sandbox_env, root)))
        limited: dict[str, str] = {}
        for provider in PROVIDERS:
            port = free_port()
            env = {
                **base_env,
                "MARKETING_SANDBOX_ADDRESS": f"127.0.0.1:{port}",
                "MARKETING_PROVIDER": provider,
            }
            helpers.append(_child(exits, Child(f"{provider}-sandbox", sandbox_argv, env, root)))
            wait_for_port(port, timeout_s=60)
            limited[provider] = f"http://127.0.0.1:{port}"

        echo_port = free_port()
        echo_argv = [sys.executable, "-m", "tests.bench.echo_server", f"127.0.0.1:{echo_port}"]
        helpers.append(_child(exits, Child("echo-server", echo_argv, base_env, root)))

        token = secrets.token_urlsafe(24)
        auth_file = root / "callers.toml"
        auth_file.write_text(caller_table("bench", token, [ALL_METHODS]), encoding="utf-8")
        service_port = free_port()
        preferences_port = free_port()
        preferences_key = secrets.token_urlsafe(32)
        service_env = {
            **base_env,
            "MARKETING_DATABASE_URL": database_url,
            "MARKETING_GRPC_ADDRESS": f"127.0.0.1:{service_port}",
            "MARKETING_NATS_URL": nats_url,
            "MARKETING_METRICS_ADDRESS": "",
            "MARKETING_AUTH_FILE": str(auth_file),
            "MARKETING_PREFERENCES_ADDRESS": f"127.0.0.1:{preferences_port}",
            "MARKETING_PREFERENCES_BASE_URL": f"http://127.0.0.1:{preferences_port}",
            "MARKETING_PREFERENCES_KEY": preferences_key,
        }
        # The production layout for heavy ingest: the gRPC process ingests, the
        # bus workers (event log, results, relay) run in a process of their own.
        service_argv = [sys.executable, "-m", "service.main", "serve"]
        serve_env = {**service_env, "MARKETING_BUS_WORKERS": "false"}
        service = _child(exits, Child("service", service_argv, serve_env, root))
        work_argv = [sys.executable, "-m", "service.main", "work"]
        workers = _child(exits, Child("service-work", work_argv, service_env, root))
        for port in (sandbox_port, echo_port, service_port, preferences_port):
            wait_for_port(port, timeout_s=60)
        service.wait_for_log("connected to NATS")
        workers.wait_for_log("connected to NATS")
        yield Stack(
            root=root,
            database_url=database_url,
            nats_url=nats_url,
            sandbox_url=f"http://127.0.0.1:{sandbox_port}",
            service_address=f"127.0.0.1:{service_port}",
            echo_address=f"127.0.0.1:{echo_port}",
            token=token,
            service=service,
            workers=workers,
            base_env=base_env,
            _exits=exits,
            limited_sandboxes=limited,
            helpers=helpers,
            provider_skew_s=provider_skew_s,
            webhook_address=f"127.0.0.1:{free_port()}",
            webhook_secret=secrets.token_urlsafe(24),
            preferences_url=f"http://127.0.0.1:{preferences_port}",
            preferences_key=preferences_key,
        )
