"""Fuzzing every method of marketing.v1.MarketingService through the real server.

**Feature: marketing-automation, hardening (issue 11 §8)**: for every method of
the service descriptor, generated requests (tests.fuzz.strategies, with the
values of tests.fuzz.known_values mixed in) and mutated request bytes
(tests.fuzz.mutations) are sent as raw bytes, and every answer must be
meaningful:

- never INTERNAL or UNKNOWN (and no hang: a 60 s deadline, for liveness only);
- every error carries a google.rpc.Status with an ErrorInfo;
- every INVALID_ARGUMENT carries a BadRequest whose violations each name a field;
- a rejected call changes no table (a checksum of every row of every table);
- an OK reply is a response message the generated client can read.

`make test` runs 100 examples per method and kind, derandomized: the same
requests every run, so a red build reproduces and a green one does not turn red
by chance (the service's data differs between runs only in generated ids).
`make fuzz` sets MARKETING_FUZZ_EXAMPLES for a long randomized run whose
failures Hypothesis keeps in .hypothesis/ and replays first next time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status
from hypothesis import given, settings
from marketing.v1 import service_pb2

from service.settings import DEFAULT_MAX_MESSAGE_BYTES
from tests.fuzz import known_values
from tests.fuzz.mutations import Mutator
from tests.fuzz.strategies import MessageStrategies
from tests.harness import TABLES, ServiceHarness, own_database

SERVICE = service_pb2.DESCRIPTOR.services_by_name["MarketingService"]
METHODS = list(SERVICE.methods)
EXAMPLES_ENV = "MARKETING_FUZZ_EXAMPLES"
CALL_TIMEOUT_S = 60.0
NEVER = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


def fuzz_settings() -> settings:
    """The "marketing" profile, 100 examples derandomized; with
    MARKETING_FUZZ_EXAMPLES=N, N examples from a random seed."""
    examples = os.environ.get(EXAMPLES_ENV)
    if examples:
        return settings(settings.get_profile("marketing"), max_examples=int(examples))
    return settings(
        settings.get_profile("marketing"), max_examples=100, derandomize=True, database=None
    )


# One query for every table: its row count and the sum of a hash of each row's
# text, so an insert, delete or update anywhere shows up.
_FINGERPRINT_SQL = " UNION ALL ".join(
    f"SELECT '{t}', count(*), coalesce(sum(hashtext(r::text)::bigint), 0) FROM {t} r"
    for t in TABLES
)


def table_fingerprints(harness: ServiceHarness) -> dict[str, tuple[int, int]]:
    harness.workers_settled()
    return {row[0]: (row[1], int(row[2])) for row in harness.sql(_FINGERPRINT_SQL)}


def _details(status: Any, kind: Any) -> list[Any]:
    found = []
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            unpacked = kind()
            detail.Unpack(unpacked)
            found.append(unpacked)
    return found


class Caller:
    """Sends raw request bytes to one method and checks that the answer means something."""

    def __init__(self, harness: ServiceHarness, method: MethodDescriptor) -> None:
        self.harness = harness
        self.method = method
        # No serializers: bytes go out as they are and come back as bytes.
        self._call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = harness.channel.unary_unary(
            f"/{SERVICE.full_name}/{method.name}"
        )
        self._response = message_factory.GetMessageClass(method.output_type)

    def check(self, raw: bytes) -> None:
        # Our own requests stay far below the server's limit: gRPC would refuse
        # a bigger one itself (RESOURCE_EXHAUSTED), which tests nothing of ours.
        assert len(raw) < DEFAULT_MAX_MESSAGE_BYTES // 4, f"generated {len(raw)} bytes"
        before = table_fingerprints(self.harness)
        try:
            reply = self._call(raw, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as error:
            self._check_rejection(error, before)
        else:
            self._response.FromString(reply)

    def _check_rejection(self, error: Any, before: dict[str, tuple[int, int]]) -> None:
        code = error.code()
        said = f"{self.method.name} answered {code.name}: {error.details()!r:.400}"
        assert code not in NEVER, said
        assert code != grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer in {CALL_TIMEOUT_S} s"
        try:
            status = rpc_status.from_call(error)
        except ValueError as mismatch:  # e.g. details of INVALID_ARGUMENT, code RESOURCE_EXHAUSTED
            raise AssertionError(f"details disagree with the code ({mismatch}): {said}") from None
        assert status is not None, f"no google.rpc.Status: {said}"
        assert _details(status, error_details_pb2.ErrorInfo), f"no ErrorInfo: {said}"
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            bad_requests = _details(status, error_details_pb2.BadRequest)
            violations = [v for b in bad_requests for v in b.field_violations]
            assert violations, f"INVALID_ARGUMENT without field violations: {said}"
            unnamed = [v.description for v in violations if not v.field]
            assert not unnamed, f"violations naming no field {unnamed}: {said}"
        after = table_fingerprints(self.harness)
        changed = sorted(t for t in TABLES if after[t] != before[t])
        assert not changed, f"{said}; yet it changed {changed}"


@pytest.fixture(scope="module")
def harness(database_url: str) -> Iterator[ServiceHarness]:
    """The service on a database of its own: what the fuzzed calls leave (dynamic
    segments, cart timers an hour ahead, contacts) and what the workers then do
    with it reach no other test."""
    with own_database(database_url, "fuzz") as url, ServiceHarness.start(url) as running:
        yield running


@pytest.fixture
def requests(harness: ServiceHarness) -> MessageStrategies:
    """Fresh known values per test: DeleteContact may erase the seeded
    contacts, and the next method's test must not depend on what it did."""
    return MessageStrategies(known_values.hints(known_values.seed(harness)))


def _ids(method: MethodDescriptor) -> str:
    return str(method.name)


@pytest.mark.parametrize("method", METHODS, ids=_ids)
def test_generated_requests_get_meaningful_answers(
    harness: ServiceHarness, requests: MessageStrategies, method: MethodDescriptor
) -> None:
    caller = Caller(harness, method)

    @fuzz_settings()
    @given(request=requests.messages(method.input_type))
    def check(request: Message) -> None:
        caller.check(request.SerializeToString())

    check()


@pytest.mark.parametrize("method", METHODS, ids=_ids)
def test_mutated_request_bytes_get_meaningful_answers(
    harness: ServiceHarness, requests: MessageStrategies, method: MethodDescriptor
) -> None:
    caller = Caller(harness, method)
    mutated = Mutator(method.input_type).bytes_from(requests.messages(method.input_type))

    @fuzz_settings()
    @given(raw=mutated)
    def check(raw: bytes) -> None:
        caller.check(raw)

    check()


def test_the_fuzzed_methods_are_every_method_the_server_offers(harness: ServiceHarness) -> None:
    """Server reflection lists exactly the methods (and request types) fuzzed here."""
    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(harness.channel))
    offered = pool.FindServiceByName(SERVICE.full_name)
    assert {(m.name, m.input_type.full_name) for m in offered.methods} == {
        (m.name, m.input_type.full_name) for m in METHODS
    }


def test_the_fingerprint_sees_an_update_that_keeps_the_row_count(harness: ServiceHarness) -> None:
    """The "changes no table" check would be blind if it only counted rows."""
    known = known_values.seed(harness)
    before = table_fingerprints(harness)
    harness.sql(
        "UPDATE marketing_contact SET first_name = 'Changed' WHERE email = :email",
        email=known.emails[0],
    )
    after = table_fingerprints(harness)
    assert after["marketing_contact"][0] == before["marketing_contact"][0]
    assert after["marketing_contact"] != before["marketing_contact"]
