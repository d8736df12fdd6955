"""An INVALID_ARGUMENT with many violations still fits a default client's
metadata limit (8 KiB soft, 16 KiB hard), so the caller gets its details."""

from __future__ import annotations

import base64
import urllib.parse

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import given
from hypothesis import strategies as st
from marketing.v1 import event_pb2
from marketing.v1 import service_pb2 as pb

from service.api.errors import to_status
from service.errors import FieldViolation, InvalidArgumentError
from tests.harness import ServiceHarness, error_reason, field_violations

# What a default client accepts without complaint, with room to spare for the
# other trailers (grpc-status, content type, ...).
TRAILER_BUDGET = 6 * 1024


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError("no ErrorInfo")


def test_sixty_bad_names_reach_a_default_client(harness: ServiceHarness) -> None:
    names = [f"failedDeliveries/not-a-uuid-{i:03d}" + "x" * 40 for i in range(60)]
    with pytest.raises(grpc.RpcError) as raised:
        harness.stub.RetryFailedDeliveries(pb.RetryFailedDeliveriesRequest(names=names))
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(error) == "INVALID_NAME"
    reported = field_violations(error)
    assert "names[0]" in reported and 0 < len(reported) < 60
    info = error_info(error)
    assert info.metadata["violations"] == "60"
    assert info.metadata["reported"] == str(len(reported))
    assert "60 invalid fields" in (error.details() or "")


def test_a_batch_of_a_thousand_bad_events_reaches_a_default_client(
    harness: ServiceHarness,
) -> None:
    bad = event_pb2.Event(email="x" * 200 + "@not an address", custom=event_pb2.CustomEvent())
    with pytest.raises(grpc.RpcError) as raised:
        harness.stub.TrackEvents(pb.TrackEventsRequest(events=[bad] * 1000))
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "events[0].email" in field_violations(error)
    assert int(error_info(error).metadata["violations"]) >= 2000  # email and name, per event


def trailer_size(violations: list[FieldViolation]) -> int:
    _, status = to_status(InvalidArgumentError(violations))
    details = base64.b64encode(status.SerializeToString())
    message = urllib.parse.quote(status.message, safe=" ")  # grpc-message is percent-encoded
    return len(details) + len(message)


violation = st.builds(
    FieldViolation,
    field=st.text(max_size=2000),
    reason=st.text(max_size=300),
    description=st.text(max_size=3000),
)


@given(st.lists(violation, min_size=1, max_size=300))
def test_the_trailer_stays_within_budget_for_any_violations(
    violations: list[FieldViolation],
) -> None:
    assert trailer_size(violations) <= TRAILER_BUDGET


@given(st.lists(violation, min_size=1, max_size=300))
def test_the_reported_violations_are_the_first_ones(violations: list[FieldViolation]) -> None:
    _, status = to_status(InvalidArgumentError(violations))
    bad_request = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad_request)
    shown = bad_request.field_violations
    assert len(shown) >= 1
    for sent, got in zip(violations, shown, strict=False):
        assert sent.field.startswith(got.field.removesuffix("\u2026"))
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    if len(shown) < len(violations):
        assert info.metadata["violations"] == str(len(violations))
        assert info.metadata["reported"] == str(len(shown))
    else:
        assert "violations" not in info.metadata


def test_few_short_violations_are_reported_whole() -> None:
    violations = [FieldViolation(f"events[{i}].email", "INVALID_EMAIL", "bad") for i in range(3)]
    _, status = to_status(InvalidArgumentError(violations))
    assert status.message == "; ".join(f"events[{i}].email: bad" for i in range(3))
