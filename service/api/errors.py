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
        return _invalid_argument(exc)
    code, status = status_of(exc)  # every other error: the one table in status_table
    status.message = _clip(status.message, MAX_MESSAGE)
    return code, status


# The status travels in the trailers (grpc-message and grpc-status-details-bin,
# base64). A client refuses trailers over its metadata limit (8 KiB soft, 16 KiB
# hard by default) and then sees RESOURCE_EXHAUSTED and no details at all, so
# an INVALID_ARGUMENT reports the first violations that fit these budgets
# (UTF-8 bytes), and how many there were in all.
MAX_REPORTED_VIOLATIONS = 50
VIOLATIONS_BUDGET = 2048
MAX_VIOLATION_TEXT = 256  # a field path or a description
MAX_MESSAGE = 512


def _clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, marked with an ellipsis if cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "\u2026"


def _invalid_argument(exc: InvalidArgumentError) -> tuple[grpc.StatusCode, status_pb2.Status]:
    reported: list[error_details_pb2.BadRequest.FieldViolation] = []
    size = 0
    for v in exc.violations[:MAX_REPORTED_VIOLATIONS]:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=_clip(v.field, MAX_VIOLATION_TEXT),
            description=_clip(v.description, MAX_VIOLATION_TEXT),
            reason=_clip(v.reason, MAX_VIOLATION_TEXT),
        )
        size += violation.ByteSize() + 4  # + its tag and length in the BadRequest
        if reported and size > VIOLATIONS_BUDGET:
            break
        reported.append(violation)
    reasons = {v.reason for v in exc.violations}
    reason = _clip(reasons.pop(), MAX_VIOLATION_TEXT) if len(reasons) == 1 else "INVALID_FIELDS"
    total, shown = len(exc.violations), len(reported)
    metadata = {"fields": _clip(",".join(v.field for v in reported), VIOLATIONS_BUDGET // 2)}
    message = "; ".join(f"{v.field}: {v.description}" for v in reported)
    if shown < total:
        metadata |= {"violations": str(total), "reported": str(shown)}
        message = f"{total} invalid fields, the first {shown}: {message}"
    details = [
        _error_info(reason, **metadata),
        _pack(error_details_pb2.BadRequest(field_violations=reported)),
    ]
    return grpc.StatusCode.INVALID_ARGUMENT, status_pb2.Status(
        code=code_pb2.INVALID_ARGUMENT, message=_clip(message, MAX_MESSAGE), details=details
    )


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], exc: MarketingError) -> NoReturn:
    code, status = to_status(exc)
    await context.abort(
        code, status.message, trailing_metadata=((STATUS_DETAILS_KEY, status.SerializeToString()),)
    )
    raise AssertionError("context.abort returned")  # abort always raises


async def refuse(
    context: grpc.aio.ServicerContext[Any, Any], method: str, exc: MarketingError
) -> NoReturn:
    """Answer a call that never reached its servicer method (its request could
    not be decoded), counted like the calls that did."""
    code, _ = to_status(exc)
    _series(method, code, CALLER.get())[0].inc()
    await abort_with(context, exc)


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
