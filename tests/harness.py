"""Test harness: the service in a background event loop, plus helpers to read
rich errors and to look at the database directly."""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from marketing.v1 import service_pb2_grpc
from marketing_runtime.connection import Bus
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.access.callers import caller_table
from service.api.auth import CallerFile, load_callers
from service.api.server import RunningServer, create_server
from service.settings import ServiceSettings
from service.storage import migrate
from service.storage.database import Database
from service.workers.runner import BusWorkers
from service.workers.segment_refresher import RefresherSettings
from tests.processes import start_pgserver

T = TypeVar("T")

# Every table, for "a rejected call writes nothing".
TABLES = (
    "marketing_contact",
    "marketing_consent",
    "marketing_segment",
    "marketing_segment_membership",
    "marketing_segment_change",
    "marketing_segment_pending",
    "marketing_segment_list_member",
    "marketing_suppression",
    "marketing_erasure_log",
    "marketing_event_log",
    "marketing_back_in_stock_subscription",
    "marketing_campaign_cache",
    "marketing_outbox",
    "marketing_contact_sync",
    "marketing_contact_sync_chunk",
    "marketing_contact_sync_error",
    "marketing_one_click",
)


# The token of the harness's own caller, "tests", which may call every method.
HARNESS_TOKEN = secrets.token_urlsafe(24)


def write_auth_file(path: Path, callers: Sequence[tuple[str, str, Sequence[str]]]) -> Path:
    """An auth file of (name, token, methods) callers."""
    tables = [caller_table(name, token, methods) for name, token, methods in callers]
    path.write_text("\n".join(tables), encoding="utf-8")
    return path


def bearer_channel(address: str, token: str) -> grpc.Channel:
    """A plaintext channel whose every call carries `authorization: Bearer <token>`.
    (gRPC attaches call credentials only to channels it deems secure; "local"
    credentials count as such on loopback without changing the bytes sent.)"""
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.access_token_call_credentials(token)
    )
    return grpc.secure_channel(address, credentials)


def make_certificates(root: Path) -> dict[str, Path]:
    """PEM files of a new CA ("ca"), a server certificate for 127.0.0.1 and
    localhost ("server_cert", "server_key") and a client certificate
    ("client_cert", "client_key"), all issued by that CA."""
    import trustme  # a development dependency only

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("checkout@example.com")
    files = {
        "ca": ca.cert_pem.bytes(),
        "server_cert": b"".join(pem.bytes() for pem in server.cert_chain_pems),
        "server_key": server.private_key_pem.bytes(),
        "client_cert": b"".join(pem.bytes() for pem in client.cert_chain_pems),
        "client_key": client.private_key_pem.bytes(),
    }
    for name, blob in files.items():
        (root / f"{name}.pem").write_bytes(blob)
    return {name: root / f"{name}.pem" for name in files}


@contextmanager
def start_embedded_postgres(root: Path) -> Iterator[str]:
    server = start_pgserver(root)
    try:
        server.psql("CREATE DATABASE marketing_test;")
        yield server.get_uri("marketing_test").replace("postgresql://", "postgresql+asyncpg://")
    finally:
        server.cleanup()


@contextmanager
def own_database(server_url: str, label: str) -> Iterator[str]:
    """A fresh, migrated database on the server of `server_url`, dropped afterwards:
    what is written there (by background workers too) reaches no other test."""
    name = f"marketing_{label}_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin_statement(server_url, f"CREATE DATABASE {name}"))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(admin_statement(server_url, f"DROP DATABASE {name} WITH (FORCE)"))


async def admin_statement(url: str, statement: str) -> None:
    """One statement outside a transaction (CREATE DATABASE, VACUUM)."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


class ServiceHarness:
    """The gRPC server runs on its own event loop thread; tests call it through
    a synchronous channel with the generated stubs, like any other client."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        db: Database,
        running: RunningServer,
        bus: Bus | None = None,
        callers: CallerFile | None = None,
    ):
        self.loop = loop
        self.db = db
        self.running = running
        self.bus = bus
        self.callers = callers
        self.address = f"127.0.0.1:{running.port}"
        self.token = HARNESS_TOKEN
        self.channel = bearer_channel(self.address, self.token)
        self.stub = service_pb2_grpc.MarketingServiceStub(self.channel)

    @classmethod
    @contextmanager
    def start(
        cls, database_url: str, nats_url: str = "", *, wait_for_bus: bool = True, **settings: Any
    ) -> Iterator[ServiceHarness]:
        """With `nats_url`, events take the bus and the relay and consumers run.
        Callers authenticate with HARNESS_TOKEN (the channel sends it) unless
        `settings` (of ServiceSettings) name an auth file of their own."""
        auth_dir = tempfile.TemporaryDirectory(prefix="marketing-auth-")
        settings.setdefault(
            "auth_file",
            write_auth_file(
                Path(auth_dir.name) / "callers.toml", [("tests", HARNESS_TOKEN, ["*"])]
            ),
        )
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        config = ServiceSettings(database_url=database_url, grpc_address="127.0.0.1:0", **settings)
        callers = load_callers(config)

        async def boot() -> tuple[Database, RunningServer, Bus | None, BusWorkers | None]:
            db = Database(database_url)
            bus = None
            if nats_url:
                bus = Bus(nats_url, name="test-service")
                bus.start()
                if wait_for_bus:
                    assert await bus.wait_ready(30), "NATS did not come up"
            # Without a bus: the segment refresher alone. No relative rounds
            # (tests run them by hand): a round rewrites segments' evaluated_at
            # behind the calls whose effects the tests compare.
            rounds_off = RefresherSettings(interval_s=24 * 3600)
            workers = BusWorkers(db, bus, segments=rounds_off)
            workers.start()
            running = await create_server(config, db, callers=callers, bus=bus)
            return db, running, bus, workers

        db, running, bus, workers = asyncio.run_coroutine_threadsafe(boot(), loop).result()
        harness = cls(loop, db, running, bus, callers)
        try:
            yield harness
        finally:
            harness.channel.close()
            harness.run(running.stop(0))
            if workers is not None:
                harness.run(workers.stop())
            if bus is not None:
                harness.run(bus.close())
            harness.run(db.close())
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            auth_dir.cleanup()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def sql(self, query: str, **params: Any) -> list[Any]:
        async def go() -> list[Any]:
            async with self.db.transaction() as session:
                result: Any = await session.execute(text(query), params)
                return list(result.all()) if result.returns_rows else []

        return self.run(go())

    def scalar(self, query: str, **params: Any) -> Any:
        rows = self.sql(query, **params)
        return rows[0][0] if rows else None

    def table_counts(self) -> dict[str, int]:
        self.workers_settled()
        return {table: self.scalar(f"SELECT count(*) FROM {table}") for table in TABLES}

    def workers_settled(self) -> None:
        """Wait until the service's workers have nothing due: no timer due now
        (a firing holds the timers it took until it commits, with what it
        wrote), no flow signal, no segment change pending. An accepted call
        with a past date arms a timer due at once, whose firing writes events
        and outbox rows a moment later, behind the calls that follow."""
        assert_eventually(
            lambda: self.scalar(
                "SELECT NOT EXISTS (SELECT 1 FROM marketing_timer WHERE due_at <= now())"
                " AND NOT EXISTS (SELECT 1 FROM marketing_flow_signal)"
            ),
            timeout_s=60,
        )
        self.segments_settled()

    def segments_settled(self) -> None:
        """Wait until the segment refresher has drained every changed contact
        (a drain holds the rows it took until it commits): memberships change
        behind the calls that caused them, and a count taken meanwhile would
        see a rejected call's neighbours move."""
        assert_eventually(
            lambda: self.scalar("SELECT count(*) = 0 FROM marketing_segment_pending"),
            timeout_s=60,
        )

    def outbox_rows(self, email: str, kind: str | None = None) -> list[OutboxRow]:
        """The person's outbox rows in order, each payload as its kind's message."""
        from service.common.validation import email_key
        from service.deliveries import outbox

        query = "SELECT kind, payload FROM marketing_outbox WHERE contact_key = :key"
        if kind:
            query += " AND kind = :kind"
        rows = self.sql(query + " ORDER BY seq", key=email_key(email), kind=kind)
        return [OutboxRow(row.kind, outbox.payload(row.kind, row.payload)) for row in rows]


class OutboxRow(NamedTuple):
    kind: str
    payload: Any  # the kind's bus payload message


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def unique_phone() -> str:
    """An E.164 number no other test uses (SMS consent needs one)."""
    return f"+4915{uuid.uuid4().int % 10**9:09d}"


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """BadRequest field -> reason, from a rich error status."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status"
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.update({v.field: v.reason for v in bad_request.field_violations})
    return found


def error_reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    raise AssertionError("no ErrorInfo in the status")


def assert_eventually(
    check: Callable[[], T | None], *, timeout_s: float = 30.0, interval_s: float = 0.05
) -> T:
    """Poll `check` until it returns something truthy (and return it), or fail
    after `timeout_s`: a deadline for liveness, not a speed requirement."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        threading.Event().wait(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s (last value: {last!r})")


async def until_true(check: Callable[[], bool], *, timeout_s: float = 30.0) -> None:
    """`eventually` for a plain (not a coroutine) check, inside a running event loop."""

    async def checked() -> bool:
        return check()

    await eventually(checked, timeout_s=timeout_s)


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, timeout_s: float = 30.0, interval_s: float = 0.05
) -> T:
    """`assert_eventually` for a coroutine check, inside a running event loop."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s} s (last value: {last!r})")


_WAITING_FOR = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")


async def until_waiting_for(
    engine: AsyncEngine, holder_pid: int, task: asyncio.Task[Any], *, timeout_s: float = 30.0
) -> None:
    """Until some session waits for a lock the backend `holder_pid` holds (the
    one `task` runs, in a race test), or `task` is done: the caller then checks
    which (a task done already did not wait)."""
    async with engine.connect() as watcher:

        async def waiting_or_done() -> bool:
            return task.done() or bool(await watcher.scalar(_WAITING_FOR, {"pid": holder_pid}))

        await eventually(waiting_or_done, timeout_s=timeout_s)
