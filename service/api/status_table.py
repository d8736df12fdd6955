"""The one table from the service's errors to gRPC statuses: the code and the
google.rpc details each kind of error carries. Bad input (InvalidArgumentError,
with its BadRequest) is built in service.api.errors; everything else is here.
A retryable error (`MarketingError.retryable`) always carries a RetryInfo.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from service.errors import (
    AbortedError,
    AlreadyExistsError,
    FailedPreconditionError,
    MarketingError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
)

ERROR_DOMAIN = "marketing.v1"
RETRY_DELAY = duration_pb2.Duration(seconds=1)

Details = list[any_pb2.Any]


def pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def error_info(reason: str, **metadata: str) -> any_pb2.Any:
    return pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata))


def _not_found(exc: NotFoundError) -> Details:
    resource = error_details_pb2.ResourceInfo(
        resource_type=exc.resource_type, resource_name=exc.resource_name, description=str(exc)
    )
    reason = f"{exc.resource_type.upper().replace(' ', '_')}_NOT_FOUND"  # FAILED_DELIVERY_...
    return [error_info(reason), pack(resource)]


def _already_exists(exc: AlreadyExistsError) -> Details:
    violation = error_details_pb2.BadRequest.FieldViolation(
        field=exc.field, description=str(exc), reason="ALREADY_EXISTS"
    )
    return [
        error_info("ALREADY_EXISTS", field=exc.field),
        pack(error_details_pb2.BadRequest(field_violations=[violation])),
    ]


def _failed_precondition(exc: FailedPreconditionError) -> Details:
    violation = error_details_pb2.PreconditionFailure.Violation(
        type=exc.reason, subject=exc.subject, description=str(exc)
    )
    return [
        error_info(exc.reason),
        pack(error_details_pb2.PreconditionFailure(violations=[violation])),
    ]


def _aborted(exc: AbortedError) -> Details:
    return [error_info(exc.reason)]


def _unavailable(exc: UnavailableError) -> Details:
    return [error_info(f"{exc.dependency.upper()}_UNAVAILABLE")]


def _refused(exc: UnauthenticatedError | PermissionDeniedError) -> Details:
    return [error_info(exc.reason)]


def _internal(exc: MarketingError) -> Details:
    return [error_info("INTERNAL")]


@dataclass(frozen=True)
class Rule:
    code: grpc.StatusCode
    details: Callable[[Any], Details]


# Looked up along the error's class hierarchy; MarketingError itself (an error
# without a meaning) is INTERNAL.
STATUS_TABLE: dict[type[MarketingError], Rule] = {
    NotFoundError: Rule(grpc.StatusCode.NOT_FOUND, _not_found),
    AlreadyExistsError: Rule(grpc.StatusCode.ALREADY_EXISTS, _already_exists),
    FailedPreconditionError: Rule(grpc.StatusCode.FAILED_PRECONDITION, _failed_precondition),
    AbortedError: Rule(grpc.StatusCode.ABORTED, _aborted),
    UnavailableError: Rule(grpc.StatusCode.UNAVAILABLE, _unavailable),
    UnauthenticatedError: Rule(grpc.StatusCode.UNAUTHENTICATED, _refused),
    PermissionDeniedError: Rule(grpc.StatusCode.PERMISSION_DENIED, _refused),
    MarketingError: Rule(grpc.StatusCode.INTERNAL, _internal),
}


def rule_for(exc: MarketingError) -> Rule:
    for cls in type(exc).__mro__:
        rule = STATUS_TABLE.get(cls)
        if rule is not None:
            return rule
    raise AssertionError("MarketingError is in the table")


def status_of(exc: MarketingError) -> tuple[grpc.StatusCode, status_pb2.Status]:
    """The gRPC code and google.rpc.Status of any error but bad input."""
    rule = rule_for(exc)
    details = rule.details(exc)
    if exc.retryable:
        details.append(pack(error_details_pb2.RetryInfo(retry_delay=retry_delay(exc))))
    return rule.code, status(rule.code, exc, details)


def retry_delay(exc: MarketingError) -> duration_pb2.Duration:
    """How long the caller should wait: as the dependency said, when it said (whole
    seconds, rounded up), else RETRY_DELAY."""
    seconds = exc.retry_after_s
    if not seconds:
        return RETRY_DELAY
    return duration_pb2.Duration(seconds=max(1, math.ceil(seconds)))


def status(code: grpc.StatusCode, exc: Exception, details: Details) -> status_pb2.Status:
    rpc_code: int = code.value[0]  # grpc.StatusCode's value is (number, name)
    return status_pb2.Status(code=rpc_code, message=str(exc), details=details)
