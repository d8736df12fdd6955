"""ReconcileContact's answers when the provider cannot be asked, or the contact is not ours:
through the real gRPC server, PostgreSQL and nats-server (no dispatcher running here; the
system tests run one, tests/system/test_reconcile.py)."""

from __future__ import annotations

import grpc
import pytest
from marketing.v1 import service_pb2 as pb

from tests.builders import upsert
from tests.harness import ServiceHarness, error_reason, unique_email


def reconcile_error(stub: object, request: pb.ReconcileContactRequest) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        stub.ReconcileContact(request)  # type: ignore[attr-defined]
    return raised.value


def test_without_a_dispatcher_it_is_unavailable_and_says_why(bus_harness: ServiceHarness) -> None:
    email = unique_email("reconcile")
    bus_harness.stub.UpsertContact(upsert(email))
    error = reconcile_error(bus_harness.stub, pb.ReconcileContactRequest(email=email))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "no dispatcher answered" in (error.details() or "")
    assert error_reason(error) == "DISPATCHER_UNAVAILABLE"


def test_without_the_bus_it_is_unavailable(harness: ServiceHarness) -> None:
    email = unique_email("reconcile")
    harness.stub.UpsertContact(upsert(email))
    error = reconcile_error(harness.stub, pb.ReconcileContactRequest(email=email))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(error) == "BUS_UNAVAILABLE"


def test_an_unknown_or_erased_contact_is_not_found(bus_harness: ServiceHarness) -> None:
    stub = bus_harness.stub
    email = unique_email("reconcile")
    name = stub.UpsertContact(upsert(email)).contact.name
    stub.DeleteContact(pb.DeleteContactRequest(name=name))
    for request in (
        pb.ReconcileContactRequest(name=name),
        pb.ReconcileContactRequest(email=email),
        pb.ReconcileContactRequest(email=unique_email("never")),
    ):
        error = reconcile_error(stub, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error_reason(error) == "CONTACT_NOT_FOUND"


def test_a_bad_name_or_no_lookup_is_an_invalid_argument(bus_harness: ServiceHarness) -> None:
    for request in (
        pb.ReconcileContactRequest(name="people/1"),
        pb.ReconcileContactRequest(email="not-an-email"),
        pb.ReconcileContactRequest(),
    ):
        error = reconcile_error(bus_harness.stub, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
