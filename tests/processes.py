"""Real processes for system tests: nats-server with JetStream and dispatcher
replicas, started, stopped and killed like in production."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from marketing_runtime.envelope import NATS_MAX_PAYLOAD
from nats.aio.client import Client

from service.devstack import nats_server_command

BIN = Path(sys.executable).parent
# A max_payload for tests of messages over the limit: small, so those are small too.
SMALL_MAX_PAYLOAD = 64 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# pgserver gives pg_ctl 10 s to start the server; on a loaded machine that is
# sometimes too short (CI once saw it fail with the log not yet written).
PGSERVER_START_ATTEMPTS = 3


def start_pgserver(root: Path) -> Any:
    """pgserver's get_server, tried again when the start fails or times out.
    A failed attempt leaves its half-made handle in pgserver's cache, which would
    be returned again, and an exit hook that would trip over the deleted data:
    both are removed before the next attempt, which finds the data initialised
    and either a server that came up late (it reuses it) or none (it starts one)."""
    import pgserver
    from pgserver.postgres_server import PostgresServer

    pgdata = Path(root).expanduser().resolve()
    for attempt in range(1, PGSERVER_START_ATTEMPTS + 1):
        try:
            return pgserver.get_server(pgdata, cleanup_mode="delete")
        except (subprocess.SubprocessError, OSError) as error:
            failed = PostgresServer._instances.pop(pgdata, None)
            if failed is not None:
                atexit.unregister(failed._cleanup)
            if attempt == PGSERVER_START_ATTEMPTS:
                raise
            print(f"pgserver start {attempt} failed ({error!r}); trying again", file=sys.stderr)
            time.sleep(2)
    raise AssertionError("unreachable")


def wait_for_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on port {port} after {timeout_s} s")


class NatsServer:
    """nats-server -js on a fixed port and store, so it can be stopped and
    started again with its data, as an operator would; with the max_payload
    we ask of production unless told otherwise."""

    def __init__(self, store: Path, *, max_payload: int = NATS_MAX_PAYLOAD) -> None:
        self.port = free_port()
        self.store = store
        self.url = f"nats://127.0.0.1:{self.port}"
        self.max_payload = max_payload  # read at each start
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = nats_server_command(self.port, self.store, max_payload=self.max_payload)
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(timeout=30)
        self._process = None


class DispatcherProcess:
    """One `marketing-dispatcher` replica."""

    def __init__(self, nats_url: str, sandbox_url: str, **settings: str) -> None:
        self.env = {
            **os.environ,
            "MARKETING_NATS_URL": nats_url,
            "MARKETING_PROVIDER": "sandbox",
            "MARKETING_SANDBOX_URL": sandbox_url,
            "MARKETING_METRICS_ADDRESS": "",
            "MARKETING_LINGER_S": "0.05",
            "MARKETING_LEASE_TTL_S": "3",
            **{f"MARKETING_{k.upper()}": v for k, v in settings.items()},
        }
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> DispatcherProcess:
        self._process = subprocess.Popen([sys.executable, "-m", "dispatcher.main"], env=self.env)
        return self

    def signal(self, number: int) -> None:
        assert self._process is not None
        self._process.send_signal(number)

    def terminate(self, timeout_s: float = 60.0) -> int:
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        return self._process.wait(timeout=timeout_s)

    def kill(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process.wait(timeout=30)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.kill()


async def kill_connection(nc: Client) -> None:
    """Make nats-server close this connection, as it does when a client sends
    a message larger than its max_payload: nats-py reads the server's -ERR
    and closes for good. Only the command line is sent: with the payload
    behind it the server's close may reach the client as a reset, before the
    -ERR, and nats-py would reconnect by itself."""
    # nats-py's own publish refuses this; its private writer does not.
    await nc._send_command(b"PUB marketing.test.kill %d\r\n" % (nc.max_payload + 1))
    await nc._flush_pending()


class RestartablePostgres:
    """An embedded PostgreSQL (pgserver) of a test's own, which it stops and
    starts like an operator restarting the database; the session's shared
    database is not touched. pg_ctl is never forked from the test process
    itself: run as another user from a process with gRPC's threads it crashed."""

    def __init__(self, root: Path) -> None:
        self._server = start_pgserver(root)
        self._server.psql("CREATE DATABASE marketing_test;")
        self.pgdata = Path(root)
        self.url = self._url()

    def _url(self) -> str:
        uri: str = self._server.get_uri("marketing_test")
        return uri.replace("postgresql://", "postgresql+asyncpg://")

    def _postmaster_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text().splitlines()[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def stop(self, timeout_s: float = 60.0) -> None:
        """A fast shutdown (SIGINT, as `pg_ctl -m fast stop` sends): sessions
        are ended (57P01), connections refused while it runs (57P03), then the
        socket is gone."""
        pid = self._postmaster_pid()
        assert pid is not None, "PostgreSQL is not running"
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        while self._postmaster_pid() is not None:
            assert time.monotonic() < deadline, "PostgreSQL did not stop"
            time.sleep(0.05)

    def start(self) -> None:
        """Start again, as pgserver first did (same socket, same options)."""
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, pgserver; pgserver.get_server(sys.argv[1], cleanup_mode=None)",
                str(self.pgdata),
            ],
            check=True,
            timeout=120,
        )
        assert self._postmaster_pid() is not None

    def close(self) -> None:
        if self._postmaster_pid() is not None:
            self.stop()
        self._server.cleanup()  # finds it stopped: only deletes the data
