"""The control endpoints every sandbox has, with one meaning and one shape (no
authentication; never faulted, rate limited or recorded):

    GET    /_sandbox/requests[?path=]   accepted requests: seq, method, path, query, endpoint,
                                        received_at, received_s, headers, body
    DELETE /_sandbox/requests           forget requests, rejections, refusals and peaks
    GET    /_sandbox/rejections         answered errors: seq, method, path, endpoint, status,
                                        received_at and what the provider answered
    GET    /_sandbox/throttled          rate-limit refusals and peaks (common/throttled.py)
    GET    /_sandbox/faults             queued faults
    POST   /_sandbox/faults             one fault or a list (common/faults.py), queued in order
    DELETE /_sandbox/faults             forget queued faults
    GET    /_sandbox/health             {"status": "ok"}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from dispatcher.sandbox.common.faults import Fault, FaultQueue, parse_items
from dispatcher.sandbox.common.http import SandboxHandler
from dispatcher.sandbox.common.recording import RequestLog

PREFIX = "/_sandbox/"
T = TypeVar("T")


class Controlled(Protocol):
    """What the shared control endpoints need of a sandbox's state."""

    @property
    def log(self) -> RequestLog: ...

    @property
    def faults(self) -> FaultQueue: ...

    def throttled(self) -> dict[str, Any]: ...

    def clear_log(self) -> None: ...

    def clear_faults(self) -> None: ...


def answer_shared(
    handler: SandboxHandler, state: Controlled, path: str, path_filter: str | None, body: bytes
) -> bool:
    """Answer one of the endpoints above; False when `path` is none of them."""
    match handler.command, path.rstrip("/"):
        case "GET", "/_sandbox/requests":
            requests = state.log.requests_json(path_filter)
            handler.send(200, requests, content_type="application/json")
        case "DELETE", "/_sandbox/requests":
            state.clear_log()
            handler.send(204)
        case "GET", "/_sandbox/rejections":
            handler.send_json(200, state.log.rejections())
        case "GET", "/_sandbox/throttled":
            handler.send_json(200, state.throttled())
        case "GET", "/_sandbox/faults":
            handler.send_json(200, state.faults.list())
        case "POST", "/_sandbox/faults":
            faults = parsed_or_refused(handler, body, Fault.from_json, "fault")
            if faults is not None:
                for fault in faults:
                    state.faults.add(fault)
                handler.send_json(201, state.faults.list())
        case "DELETE", "/_sandbox/faults":
            state.clear_faults()
            handler.send(204)
        case "GET", "/_sandbox/health":
            handler.send_json(200, {"status": "ok"})
        case _:
            return False
    return True


def parsed_or_refused(
    handler: SandboxHandler, body: bytes, parse: Callable[[Any], T], what: str
) -> list[T] | None:
    """A control body of one JSON object or a list of them, each parsed; None (answered
    400 in the provider's error body) if any is bad."""
    try:
        return parse_items(body, parse)
    except (ValueError, TypeError) as exc:
        handler.send(400, handler.error_body(400, f"Invalid {what}: {exc}"))
        return None
