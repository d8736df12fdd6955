"""Only known callers get in: the auth file on disk, and the gRPC interceptor
that asks it about every call except health checks and reflection.

The rules (file format, token check, allowed methods) are in
service/access/callers.py; this module reads the file and speaks gRPC.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection
from marketing.v1 import service_pb2

from service.access.callers import AuthFileError, Callers, parse_callers
from service.api.errors import abort_with, to_status
from service.errors import MarketingError
from service.metrics import CALLER, RPC_REQUESTS
from service.settings import ServiceSettings

log = logging.getLogger(__name__)

MARKETING_METHODS = frozenset(
    service_pb2.DESCRIPTOR.services_by_name["MarketingService"].methods_by_name
)
# Open to everyone: load balancers probe health, and generic clients (buf curl,
# grpcurl) read the schema before they can send a token.
OPEN_SERVICES = frozenset(
    {
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
        "grpc.reflection.v1.ServerReflection",
    }
)


class AuthSetupError(Exception):
    """The service cannot start with this authentication set-up; the message says why."""


class CallerFile:
    """The callers of MARKETING_AUTH_FILE as last read successfully."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.callers = self._read()
        except (AuthFileError, OSError) as exc:
            raise AuthSetupError(f"auth file {path}: {exc}") from None

    def _read(self) -> Callers:
        return parse_callers(self.path.read_text(encoding="utf-8"), MARKETING_METHODS)

    def reload(self) -> bool:
        """Re-read the file (on SIGHUP). A file that cannot be used changes
        nothing: the callers read before stay, and the log says why."""
        try:
            callers = self._read()
        except (AuthFileError, OSError) as exc:
            log.error(
                "auth file %s not reloaded, keeping the %d callers read before: %s",
                self.path,
                len(self.callers.callers),
                exc,
            )
            return False
        self.callers = callers
        log.info("auth file %s reloaded: callers %s", self.path, ", ".join(callers.names))
        return True


def load_callers(settings: ServiceSettings) -> CallerFile | None:
    """The callers to admit, or None when authentication is disabled; refuses
    a service that would otherwise be open by accident."""
    if settings.auth_file is not None:
        callers = CallerFile(settings.auth_file)
        log.info("authentication: callers %s", ", ".join(callers.callers.names))
        return callers
    if settings.auth != "disabled":
        raise AuthSetupError(
            "no MARKETING_AUTH_FILE: set it to the callers' file (see README, Authentication), "
            "or set MARKETING_AUTH=disabled to let any caller in"
        )
    log.warning("authentication DISABLED (MARKETING_AUTH=disabled): any caller gets in")
    return None


# grpc's stubs make the handler generic; at run time it is not subscriptable.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Admits a call by its bearer token, or answers it with UNAUTHENTICATED or
    PERMISSION_DENIED before its request is even parsed. The admitted caller's
    name labels the call's metrics."""

    def __init__(self, callers: CallerFile) -> None:
        self._callers = callers

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        service, _, method = handler_call_details.method.rpartition("/")
        if handler is None or service.lstrip("/") in OPEN_SERVICES:
            return handler
        authorization = _header(handler_call_details.invocation_metadata, "authorization")
        try:
            caller = self._callers.callers.admit(authorization, method)
        except MarketingError as refusal:
            code, _ = to_status(refusal)
            RPC_REQUESTS.labels(method, code.name, "").inc()
            # Debug only: anyone reaching the port could otherwise flood the log;
            # the counter above shows refusals. The message never holds the token.
            log.debug("refused a call to %s: %s", method, refusal)
            return _refusing(handler, refusal)
        # The handler runs in this task, so it sees the name (service/api/errors.py).
        CALLER.set(caller.name)
        return handler


def _header(metadata: Any, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, str) else None
    return None


def _refusing(handler: Handler, refusal: MarketingError) -> Handler:
    """A handler of the same shape as `handler` that only answers `refusal`;
    without a deserializer, so the request bytes are never looked at."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await abort_with(context, refusal)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)
