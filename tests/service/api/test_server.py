"""The process around the servicer: health, reflection, shutdown, outages."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from marketing.v1 import service_pb2 as pb
from marketing.v1 import service_pb2_grpc
from prometheus_client import REGISTRY
from sqlalchemy import text

from service.api.server import SERVICE_NAME
from service.storage import migrate
from tests.builders import product_viewed, upsert
from tests.harness import (
    ServiceHarness,
    bearer_channel,
    error_reason,
    start_embedded_postgres,
    unique_email,
    write_auth_file,
)

BUF = str(Path(sys.executable).parent / "buf")


def test_health_reports_serving(harness: ServiceHarness) -> None:
    health = health_pb2_grpc.HealthStub(harness.channel)
    for service in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def buf_curl(
    address: str, method: str, body: dict[str, object] | None = None, *, token: str
) -> Any:
    """Call the service the way the README does: a generic client using reflection."""
    args = [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    args += ["-H", f"Authorization: Bearer {token}"]
    if body is not None:
        args += ["-d", json.dumps(body)]
    out = subprocess.run(
        [*args, f"http://{address}/marketing.v1.MarketingService/{method}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_readme_walkthrough_with_a_generic_client(harness: ServiceHarness) -> None:
    email = unique_email("ada")
    token = harness.token
    contact = buf_curl(
        harness.address,
        "UpsertContact",
        {"contact": {"email": email, "first_name": "Ada", "last_name": "Lovelace"}},
        token=token,
    )["contact"]
    buf_curl(
        harness.address,
        "RecordConsent",
        {
            "parent": contact["name"],
            "consent": {"type": "CONSENT_TYPE_EMAIL", "granted": True, "source": "checkout"},
        },
        token=token,
    )
    tracked = buf_curl(
        harness.address,
        "TrackEvent",
        {
            "event": {
                "email": email,
                "placed_order": {
                    "order": {
                        "order_id": "1001",
                        "lines": [
                            {
                                "product_id": "mug-42",
                                "quantity": 2,
                                "unit_price": {"currency_code": "EUR", "units": 12},
                            }
                        ],
                        "total": {"currency_code": "EUR", "units": 24},
                    }
                },
            }
        },
        token=token,
    )
    assert tracked["eventId"]
    got = buf_curl(harness.address, "GetContact", {"email": email}, token=token)["contact"]
    assert got["emailOptIn"] is True and got["lastName"] == "Lovelace"
    stats = buf_curl(harness.address, "GetQueueStats", {}, token=token)  # zero fields left out
    assert set(stats) <= {"pending", "inFlight", "failed", "oldestPendingAge"}


def test_database_outage_is_unavailable_and_retryable() -> None:
    with ServiceHarness.start("postgresql+asyncpg://nobody@127.0.0.1:1/none") as down:
        with pytest.raises(grpc.RpcError) as err:
            down.stub.UpsertContact(upsert(unique_email()))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_reason(err.value) == "POSTGRESQL_UNAVAILABLE"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_serving(channel: grpc.Channel) -> None:
    grpc.channel_ready_future(channel).result(timeout=30)
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_sigterm_finishes_in_flight_rpcs(
    harness: ServiceHarness, database_url: str, tmp_path: Path
) -> None:
    email = unique_email()
    harness.stub.UpsertContact(upsert(email))
    address = f"127.0.0.1:{_free_port()}"
    metrics = f"127.0.0.1:{_free_port()}"
    auth_file = write_auth_file(tmp_path / "callers.toml", [("ops", "ops-token", ["*"])])
    env = {
        **os.environ,
        "MARKETING_DATABASE_URL": database_url,
        "MARKETING_GRPC_ADDRESS": address,
        "MARKETING_SHUTDOWN_GRACE_S": "30",
        "MARKETING_METRICS_ADDRESS": metrics,
        "MARKETING_AUTH_FILE": str(auth_file),
    }
    process = subprocess.Popen([sys.executable, "-m", "service.main", "serve"], env=env)
    try:
        channel = bearer_channel(address, "ops-token")
        _wait_serving(channel)
        stub = service_pb2_grpc.MarketingServiceStub(channel)
        stub.GetQueueStats(pb.GetQueueStatsRequest())
        scraped = httpx_get_or_none(f"http://{metrics}/metrics")
        assert scraped is not None
        counted = 'marketing_rpc_requests_total{caller="ops",code="OK",method="GetQueueStats"} 1.0'
        assert counted in scraped
        # Hold the contact's row lock so an upsert is provably in flight at SIGTERM.
        locked, release = threading.Event(), asyncio.Event()

        async def hold_lock() -> None:
            async with harness.db.transaction() as session:
                await session.execute(
                    text("SELECT 1 FROM marketing_contact WHERE email = :e FOR UPDATE"),
                    {"e": email},
                )
                locked.set()
                await release.wait()

        holder = asyncio.run_coroutine_threadsafe(hold_lock(), harness.loop)
        assert locked.wait(timeout=30)
        in_flight = stub.UpsertContact.future(upsert(email, loyalty_tier="gold"), timeout=60)
        _wait_until_blocked(harness, email)
        process.send_signal(signal.SIGTERM)
        harness.loop.call_soon_threadsafe(release.set)
        holder.result(timeout=30)
        assert in_flight.result().contact.loyalty_tier == "gold"
        assert process.wait(timeout=30) == 0
        scraped = httpx_get_or_none(f"http://{metrics}/metrics")
        assert scraped is None, "the metrics endpoint goes away with the process"
    finally:
        if process.poll() is None:
            process.kill()


def httpx_get_or_none(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=5).text
    except httpx.TransportError:
        return None


def test_rpcs_are_counted_by_method_code_and_caller(stub) -> None:
    def sample(code: str) -> float:
        labels = {"method": "TrackEvent", "code": code, "caller": "tests"}
        return REGISTRY.get_sample_value("marketing_rpc_requests_total", labels) or 0.0

    ok, bad = sample("OK"), sample("INVALID_ARGUMENT")
    accepted = (
        REGISTRY.get_sample_value("marketing_events_accepted_total", {"metric": "product_viewed"})
        or 0.0
    )
    stub.TrackEvent(pb.TrackEventRequest(event=product_viewed(unique_email())))
    with pytest.raises(grpc.RpcError):
        stub.TrackEvent(pb.TrackEventRequest(event=product_viewed("")))
    assert (sample("OK"), sample("INVALID_ARGUMENT")) == (ok + 1, bad + 1)
    assert (
        REGISTRY.get_sample_value("marketing_events_accepted_total", {"metric": "product_viewed"})
        == accepted + 1
    )


def _wait_until_blocked(harness: ServiceHarness, email: str) -> None:
    """Until PostgreSQL shows a session waiting for a lock (the in-flight upsert)."""
    for _ in range(600):
        waiting = harness.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database() AND query ILIKE '%marketing_contact%'"
        )
        if waiting:
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"the upsert for {email} never reached the database")


def test_migrations_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    with start_embedded_postgres(tmp_path) as url:
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        migrate.upgrade(url)
