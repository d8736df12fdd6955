"""Authentication of `marketing-service serve` as a process: it refuses to start
open by accident, says when it is open on purpose, and re-reads the auth file
on a real SIGHUP; without an auth file (and in `work`) SIGHUP ends nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from marketing.v1 import service_pb2 as pb
from marketing.v1 import service_pb2_grpc

from tests.harness import assert_eventually, bearer_channel, own_database, write_auth_file
from tests.processes import NatsServer, free_port


def _env(database_url: str, **settings: str) -> dict[str, str]:
    """The process's environment: none of the shell's MARKETING_ settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MARKETING_")}
    return {
        **base,
        "MARKETING_DATABASE_URL": database_url,
        "MARKETING_METRICS_ADDRESS": "",
        **{f"MARKETING_{k.upper()}": v for k, v in settings.items()},
    }


@contextmanager
def _serving(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    address = f"127.0.0.1:{free_port()}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.main", "serve"],
            env={**env, "MARKETING_GRPC_ADDRESS": address},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(address))
        reply = health.Check(health_pb2.HealthCheckRequest(), wait_for_ready=True, timeout=60)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        yield process, address
    finally:
        process.terminate()
        process.wait(timeout=30)


def _stats(address: str, token: str | None) -> grpc.StatusCode:
    channel = grpc.insecure_channel(address) if token is None else bearer_channel(address, token)
    try:
        service_pb2_grpc.MarketingServiceStub(channel).GetQueueStats(
            pb.GetQueueStatsRequest(), timeout=10
        )
    except grpc.RpcError as error:
        return error.code()
    finally:
        channel.close()
    return grpc.StatusCode.OK


def _start_refused(env: dict[str, str]) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "service.main", "serve"],
        env={**env, "MARKETING_GRPC_ADDRESS": f"127.0.0.1:{free_port()}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0, run.stdout + run.stderr
    return run.stderr


def test_without_an_auth_file_the_service_refuses_to_start(database_url: str) -> None:
    said = _start_refused(_env(database_url))
    assert "MARKETING_AUTH_FILE" in said and "MARKETING_AUTH=disabled" in said


def test_a_bad_auth_file_stops_the_start_naming_the_caller(
    database_url: str, tmp_path: Path
) -> None:
    auth_file = write_auth_file(tmp_path / "callers.toml", [("checkout", "t", ["TrackEvnet"])])
    said = _start_refused(_env(database_url, auth_file=str(auth_file)))
    assert "caller 'checkout': unknown methods ['TrackEvnet']" in said


def test_with_authentication_disabled_it_serves_anyone_and_says_so(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    with _serving(_env(database_url, auth="disabled"), log) as (_, address):
        assert _stats(address, None) == grpc.StatusCode.OK
    assert "authentication DISABLED" in log.read_text()


def test_sighup_reloads_the_auth_file(database_url: str, tmp_path: Path) -> None:
    auth_file = write_auth_file(tmp_path / "callers.toml", [("ops", "first-token", ["*"])])
    log = tmp_path / "service.log"
    with _serving(_env(database_url, auth_file=str(auth_file)), log) as (process, address):
        assert _stats(address, "first-token") == grpc.StatusCode.OK
        assert _stats(address, "second-token") == grpc.StatusCode.UNAUTHENTICATED

        write_auth_file(auth_file, [("ops", "second-token", ["*"])])
        process.send_signal(signal.SIGHUP)
        assert_eventually(lambda: _stats(address, "second-token") == grpc.StatusCode.OK)
        assert _stats(address, "first-token") == grpc.StatusCode.UNAUTHENTICATED

        auth_file.write_text("[[callers]]\nname = 'ops'\n")  # no token, no methods
        process.send_signal(signal.SIGHUP)
        assert_eventually(lambda: "not reloaded" in log.read_text())
        assert _stats(address, "second-token") == grpc.StatusCode.OK
        assert process.poll() is None
    text = log.read_text()
    assert "first-token" not in text and "second-token" not in text  # tokens are never logged


def _survives_sighup(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGHUP leaves the process running: its default action would end it at once."""
    process.send_signal(signal.SIGHUP)
    assert_eventually(lambda: "nothing to reload" in log.read_text() or process.poll() is not None)
    assert process.poll() is None, f"SIGHUP ended the process ({process.returncode})"


def _stops_gracefully(process: subprocess.Popen[bytes], log: Path) -> None:
    process.terminate()
    assert process.wait(timeout=30) == 0
    assert log.read_text().rstrip().endswith("stopped")


def test_sighup_does_not_end_a_service_without_an_auth_file(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    with _serving(_env(database_url, auth="disabled"), log) as (process, address):
        _survives_sighup(process, log)
        assert _stats(address, None) == grpc.StatusCode.OK
        _stops_gracefully(process, log)


@contextmanager
def _bus_of_its_own(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A database and a nats-server of its own: the workers started here take no
    message from the shared bus's consumers and write to no other test's tables."""
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    try:
        with own_database(database_url, "auth_work") as url:
            yield _env(url, nats_url=nats.url)
    finally:
        nats.stop()


def test_sighup_does_not_end_the_bus_workers(database_url: str, tmp_path: Path) -> None:
    log = tmp_path / "work.log"
    with _bus_of_its_own(database_url, tmp_path) as env:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "service.main", "work"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            assert_eventually(lambda: "bus workers running" in log.read_text())
            _survives_sighup(process, log)
            _stops_gracefully(process, log)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.mark.parametrize("missing", ["tls_cert", "tls_key"])
def test_tls_needs_both_certificate_and_key(database_url: str, missing: str) -> None:
    given = {"tls_cert": "/nonexistent/cert.pem", "tls_key": "/nonexistent/key.pem"}
    del given[missing]
    said = _start_refused(_env(database_url, auth="disabled", **given))
    assert "MARKETING_TLS_CERT and MARKETING_TLS_KEY go together" in said


def test_an_unreadable_tls_file_stops_the_start_naming_it(
    database_url: str, tmp_path: Path
) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    missing = tmp_path / "missing-key.pem"
    env = _env(database_url, auth="disabled", tls_cert=str(cert), tls_key=str(missing))
    assert f"TLS file {missing}: No such file or directory" in _start_refused(env)
    missing.write_text("-----BEGIN PRIVATE KEY-----\n")
    assert f"TLS file {cert}: not PEM" in _start_refused(env)
