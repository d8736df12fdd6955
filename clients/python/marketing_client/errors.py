"""Service errors as Python exceptions, with the fields a bad request named.

The service answers every failure with a google.rpc.Status in the
`grpc-status-details-bin` trailer: an ErrorInfo (domain "marketing.v1", an
UPPER_SNAKE reason) and, for bad input, a BadRequest naming each bad field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    field: str  # path in the request, e.g. "events[3].email"
    description: str
    reason: str  # e.g. "INVALID_EMAIL"


class MarketingError(Exception):
    """A call failed. `code` is the gRPC status; `reason` the service's
    machine-readable reason ("" if it sent none); `violations` the bad fields;
    `retry_delay_s` how long the service asked callers to wait before a retry
    (None if it did not say)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        violations: tuple[FieldViolation, ...] = (),
        retry_delay_s: float | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.violations = violations
        self.retry_delay_s = retry_delay_s

    def field_errors(self) -> dict[str, str]:
        """{field path: description}, for showing next to a form's fields."""
        return {v.field: v.description for v in self.violations}


class InvalidArgumentError(MarketingError):
    """The request was bad; `violations` names every bad field."""


class NotFoundError(MarketingError):
    pass


class AlreadyExistsError(MarketingError):
    pass


class FailedPreconditionError(MarketingError):
    pass


class ResourceExhaustedError(MarketingError):
    """The service is at its limit of calls in progress: retry with backoff."""


class UnavailableError(MarketingError):
    """The service (or what it stores to) could not be reached; still so after the retries."""


class DeadlineExceededError(MarketingError):
    pass


class UnauthenticatedError(MarketingError):
    """No token, or one the service does not know (`reason` says which)."""


class PermissionDeniedError(MarketingError):
    """The token's caller may not call this method."""


_BY_CODE: dict[grpc.StatusCode, type[MarketingError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
}


def from_rpc_error(error: grpc.aio.AioRpcError) -> MarketingError:
    """The exception for a failed call, details read from its trailers."""
    code = error.code()
    details = _details(error.trailing_metadata())
    cls = _BY_CODE.get(code, MarketingError)
    return cls(
        code,
        error.details() or "",
        reason=details.reason,
        violations=tuple(details.violations),
        retry_delay_s=details.retry_delay_s,
    )


@dataclass
class _Details:
    reason: str = ""
    violations: list[FieldViolation] = dataclasses.field(default_factory=list)
    retry_delay_s: float | None = None


def _details(trailers: object) -> _Details:
    found = _Details()
    raw = next(
        (value for key, value in (trailers or ()) if key == STATUS_DETAILS_KEY),  # type: ignore[attr-defined]
        None,
    )
    if not isinstance(raw, bytes):
        return found
    try:
        status = status_pb2.Status.FromString(raw)
    except DecodeError:
        return found  # not from this service (a proxy's?): the code and message still stand
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            found.reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.violations += (
                FieldViolation(v.field, v.description, v.reason)
                for v in bad_request.field_violations
            )
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry_info = error_details_pb2.RetryInfo()
            detail.Unpack(retry_info)
            found.retry_delay_s = retry_info.retry_delay.ToTimedelta().total_seconds()
    return found
