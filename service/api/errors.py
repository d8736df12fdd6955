"""Translate service errors into rich google.rpc.Status responses.

Each status carries an ErrorInfo (domain `marketing.v1`, an UPPER_SNAKE reason)
and, for bad input, a BadRequest with one FieldViolation per bad field. Bad
input is built here; every other error's status comes from the one table in
service.api.status_table.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.api.status_table import error_info as _error_info
from service.api.status_table import pack as _pack
from service.api.status_table import status_of
from service.errors import InvalidArgumentError, MarketingError
from service.metrics import CALLER, RPC_DURATION, RPC_REQUESTS

STATUS_DETAILS_KEY = "grpc-status-details-bin"
log = logging.getLogger(__name__)


def to_status(exc: MarketingError) -> tuple[grpc.StatusCode, status_pb2.Status]:
    """The gRPC code and the google.rpc.Status for a service error."""
    if isinstance(exc, InvalidArgumentError):
        reasons = {v.reason for v in exc.violations}
        reason = reasons.pop() if len(reasons) == 1 else "INVALID_FIELDS"
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in exc.violations
            ]
        )
        fields = ",".join(v.field for v in exc.violations)
        details = [_error_info(reason, fields=fields), _pack(bad_request)]
        return _status(grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT, exc, details)
    return status_of(exc)  # every other error: the one table in status_table


def _status(
    code: grpc.StatusCode, rpc_code: int, exc: Exception, details: list[any_pb2.Any]
) -> tuple[grpc.StatusCode, status_pb2.Status]:
    return code, status_pb2.Status(code=rpc_code, message=str(exc), details=details)


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], exc: MarketingError) -> NoReturn:
    code, status = to_status(exc)
    await context.abort(
        code, status.message, trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()),)
    )
    raise AssertionError("context.abort returned")  # abort always raises


@functools.cache
def _series(method: str, code: grpc.StatusCode, caller: str) -> tuple[Any, Any]:
    """The labelled children, looked up once (labels() is not free per call)."""
    return RPC_REQUESTS.labels(method, code.name, caller), RPC_DURATION.labels(method)


def _observe(method: str, code: grpc.StatusCode, started: float) -> None:
    requests, duration = _series(method, code, CALLER.get())
    requests.inc()
    duration.observe(time.perf_counter() - started)


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def rpc_method(handler: Handler) -> Handler:
    """The boundary every servicer method passes: it is timed and counted;
    service errors become rich statuses; anything unexpected is logged and
    reported as INTERNAL without internals."""
    method = handler.__name__

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started = time.perf_counter()
        try:
            response = await handler(self, request, context)
        except MarketingError as exc:
            error = exc
        except Exception as exc:
            log.exception("unexpected error in %s", method)
            error = MarketingError(f"internal error ({type(exc).__name__})")
        else:
            _observe(method, grpc.StatusCode.OK, started)
            return response
        # Observed before aborting: the caller sees the status as soon as we abort.
        _observe(method, to_status(error)[0], started)
        await abort_with(context, error)

    return wrapper  # type: ignore[return-value]
