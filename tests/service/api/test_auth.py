"""Only known callers get in: bearer tokens from the auth file, per-method
permissions, open health and reflection, reloading the file, TLS and mutual TLS."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from marketing.v1 import service_pb2 as pb
from marketing.v1 import service_pb2_grpc
from prometheus_client import REGISTRY

from service import devstack
from service.api.auth import CallerFile
from service.api.server import SERVICE_NAME
from tests.builders import upsert
from tests.harness import (
    ServiceHarness,
    bearer_channel,
    make_certificates,
    unique_email,
    write_auth_file,
)

CALLERS = [
    ("checkout", "checkout-token", ["TrackEvent", "UpsertContact"]),
    ("ops", "ops-token", ["*"]),
]


@pytest.fixture(scope="module")
def guarded(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceHarness]:
    auth_file = write_auth_file(tmp_path_factory.mktemp("auth") / "callers.toml", CALLERS)
    with ServiceHarness.start(database_url, auth_file=auth_file) as running:
        yield running


def _stub(address: str, token: str | None) -> service_pb2_grpc.MarketingServiceStub:
    channel = grpc.insecure_channel(address) if token is None else bearer_channel(address, token)
    return service_pb2_grpc.MarketingServiceStub(channel)


def _error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo in the status")


def _refused(call: object, code: grpc.StatusCode, reason: str) -> grpc.RpcError:
    assert callable(call)
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert error.code() == code, error
    info = _error_info(error)
    assert (info.domain, info.reason) == ("marketing.v1", reason)
    return error


def _requests(method: str, code: str, caller: str) -> float:
    labels = {"method": method, "code": code, "caller": caller}
    return REGISTRY.get_sample_value("marketing_rpc_requests_total", labels) or 0.0


def test_a_call_without_a_token_is_unauthenticated_and_writes_nothing(
    guarded: ServiceHarness,
) -> None:
    before = guarded.table_counts()
    counted = _requests("UpsertContact", "UNAUTHENTICATED", "")
    stub = _stub(guarded.address, None)
    error = _refused(
        lambda: stub.UpsertContact(upsert(unique_email())),
        grpc.StatusCode.UNAUTHENTICATED,
        "MISSING_CREDENTIALS",
    )
    assert "Bearer" in (error.details() or "")
    assert guarded.table_counts() == before
    assert _requests("UpsertContact", "UNAUTHENTICATED", "") == counted + 1


def test_an_unknown_token_is_unauthenticated(guarded: ServiceHarness) -> None:
    stub = _stub(guarded.address, "not-a-caller-token")
    error = _refused(
        lambda: stub.GetQueueStats(pb.GetQueueStatsRequest()),
        grpc.StatusCode.UNAUTHENTICATED,
        "UNKNOWN_TOKEN",
    )
    assert "not-a-caller-token" not in (error.details() or "")


def test_undecodable_bytes_from_an_unknown_caller_are_refused_unread(
    guarded: ServiceHarness,
) -> None:
    channel = grpc.insecure_channel(guarded.address)
    garbage: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        f"/{SERVICE_NAME}/UpsertContact"
    )
    _refused(
        lambda: garbage(b"\xff\xff\xff not protobuf"),
        grpc.StatusCode.UNAUTHENTICATED,
        "MISSING_CREDENTIALS",
    )


def test_a_caller_calls_only_its_methods(guarded: ServiceHarness) -> None:
    checkout = _stub(guarded.address, "checkout-token")
    email = unique_email("perm")
    contact = checkout.UpsertContact(upsert(email)).contact
    denied = _requests("DeleteContact", "PERMISSION_DENIED", "")
    _refused(
        lambda: checkout.DeleteContact(pb.DeleteContactRequest(name=contact.name)),
        grpc.StatusCode.PERMISSION_DENIED,
        "METHOD_NOT_ALLOWED",
    )
    assert _requests("DeleteContact", "PERMISSION_DENIED", "") == denied + 1
    assert guarded.scalar("SELECT count(*) FROM marketing_contact WHERE email = :e", e=email) == 1
    ops = _stub(guarded.address, "ops-token")
    ops.DeleteContact(pb.DeleteContactRequest(name=contact.name))  # "*" may call anything


def test_the_caller_labels_the_request_count(guarded: ServiceHarness) -> None:
    before = _requests("UpsertContact", "OK", "checkout")
    _stub(guarded.address, "checkout-token").UpsertContact(upsert(unique_email()))
    assert _requests("UpsertContact", "OK", "checkout") == before + 1


def test_health_and_reflection_need_no_token(guarded: ServiceHarness) -> None:
    channel = grpc.insecure_channel(guarded.address)
    health = health_pb2_grpc.HealthStub(channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    ask = reflection_pb2.ServerReflectionRequest(list_services="")
    (answer,) = list(reflection.ServerReflectionInfo(iter([ask])))
    assert SERVICE_NAME in {s.name for s in answer.list_services_response.service}


def test_a_reload_admits_the_new_callers_and_a_bad_file_keeps_the_old(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auth_file = write_auth_file(tmp_path / "callers.toml", [("ops", "old-token", ["*"])])
    with ServiceHarness.start(database_url, auth_file=auth_file) as running:
        assert running.callers is not None
        old, new = _stub(running.address, "old-token"), _stub(running.address, "new-token")
        old.GetQueueStats(pb.GetQueueStatsRequest())
        write_auth_file(auth_file, [("ops", "new-token", ["GetQueueStats"])])
        assert running.callers.reload()
        new.GetQueueStats(pb.GetQueueStatsRequest())
        _refused(
            lambda: old.GetQueueStats(pb.GetQueueStatsRequest()),
            grpc.StatusCode.UNAUTHENTICATED,
            "UNKNOWN_TOKEN",
        )
        auth_file.write_text(auth_file.read_text().replace("GetQueueStats", "GetQueueStatz"))
        with caplog.at_level(logging.ERROR):
            assert not running.callers.reload()
        assert "not reloaded" in caplog.text and "GetQueueStatz" in caplog.text
        assert "new-token" not in caplog.text
        new.GetQueueStats(pb.GetQueueStatsRequest())  # the callers read before still stand


def test_no_log_record_holds_a_token(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every logger at DEBUG, through refused and admitted calls and a reload:
    the token of the call (known or not) is in no record."""
    tokens = ("kept-tok-5e1", "wrong-tok-9a2", "rotated-tok-3c7")
    kept, wrong, rotated = tokens
    auth_file = write_auth_file(tmp_path / "callers.toml", [("probe", kept, ["GetQueueStats"])])
    with (
        caplog.at_level(logging.DEBUG),
        ServiceHarness.start(database_url, auth_file=auth_file) as running,
    ):
        assert running.callers is not None
        stats = pb.GetQueueStatsRequest()
        _stub(running.address, kept).GetQueueStats(stats)  # admitted
        _refused(
            lambda: _stub(running.address, wrong).GetQueueStats(stats),
            grpc.StatusCode.UNAUTHENTICATED,
            "UNKNOWN_TOKEN",
        )
        _refused(
            lambda: _stub(running.address, kept).UpsertContact(upsert(unique_email())),
            grpc.StatusCode.PERMISSION_DENIED,
            "METHOD_NOT_ALLOWED",
        )
        write_auth_file(auth_file, [("probe", rotated, ["*"])])
        assert running.callers.reload()
        _stub(running.address, rotated).GetQueueStats(stats)  # admitted after the reload
    logged = caplog.text
    assert "refused a call to GetQueueStats" in logged, "the refusals were logged at DEBUG"
    assert "refused a call to UpsertContact" in logged
    assert "reloaded: callers probe" in logged
    for record in caplog.records:
        text = f"{record.getMessage()} {record.exc_text or ''} {record.stack_info or ''}"
        assert not [t for t in tokens if t in text], (record.name, text)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def _tls_stub(
    address: str, certificates: dict[str, Path], *, client_cert: bool
) -> service_pb2_grpc.MarketingServiceStub:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certificates["ca"].read_bytes(),
        private_key=certificates["client_key"].read_bytes() if client_cert else None,
        certificate_chain=certificates["client_cert"].read_bytes() if client_cert else None,
    )
    credentials = grpc.composite_channel_credentials(
        credentials, grpc.access_token_call_credentials("ops-token")
    )
    return service_pb2_grpc.MarketingServiceStub(grpc.secure_channel(address, credentials))


def _tls_harness(
    database_url: str, certificates: dict[str, Path], tmp_path: Path, *, client_ca: Path | None
) -> AbstractContextManager[ServiceHarness]:
    auth_file = write_auth_file(tmp_path / "callers.toml", CALLERS)
    return ServiceHarness.start(
        database_url,
        auth_file=auth_file,
        tls_cert=certificates["server_cert"],
        tls_key=certificates["server_key"],
        tls_client_ca=client_ca,
    )


def test_tls_serves_clients_that_trust_the_ca_and_refuses_plaintext(
    database_url: str, certificates: dict[str, Path], tmp_path: Path
) -> None:
    with _tls_harness(database_url, certificates, tmp_path, client_ca=None) as running:
        stub = _tls_stub(running.address, certificates, client_cert=False)
        stub.GetQueueStats(pb.GetQueueStatsRequest(), timeout=10)
        plaintext = _stub(running.address, None)
        with pytest.raises(grpc.RpcError) as caught:
            plaintext.GetQueueStats(pb.GetQueueStatsRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_without_a_certificate(
    database_url: str, certificates: dict[str, Path], tmp_path: Path
) -> None:
    with _tls_harness(
        database_url, certificates, tmp_path, client_ca=certificates["ca"]
    ) as running:
        with_cert = _tls_stub(running.address, certificates, client_cert=True)
        with_cert.GetQueueStats(pb.GetQueueStatsRequest(), timeout=10)
        without = _tls_stub(running.address, certificates, client_cert=False)
        with pytest.raises(grpc.RpcError) as caught:
            without.GetQueueStats(pb.GetQueueStatsRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_make_up_writes_a_development_caller_and_prints_its_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    devstack.DATA_DIR.mkdir()
    env = {"MARKETING_GRPC_ADDRESS": "127.0.0.1:50051"}
    token = devstack.development_auth(env)
    assert token is not None
    auth_file = Path(env["MARKETING_AUTH_FILE"])
    assert auth_file == (tmp_path / ".data" / "auth.toml").resolve()
    assert auth_file.stat().st_mode & 0o077 == 0, "only its owner may read it"
    assert token not in auth_file.read_text()
    callers = CallerFile(auth_file).callers
    assert callers.admit(f"Bearer {token}", "DeleteContact").name == "dev"
    shown = devstack.first_call(
        {**env, "MARKETING_NATS_URL": "nats://x", "MARKETING_SANDBOX_URL": "http://y"}, token
    )
    assert f"export TOKEN={token}" in shown and 'Authorization: Bearer $TOKEN"' in shown


def test_make_up_uses_the_auth_file_it_is_given() -> None:
    env = {"MARKETING_AUTH_FILE": "/etc/marketing/callers.toml"}
    assert devstack.development_auth(env) is None
    assert env == {"MARKETING_AUTH_FILE": "/etc/marketing/callers.toml"}
