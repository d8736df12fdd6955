"""The sandbox's HTTP side: a threading HTTP/1.1 server (keep-alive) and its request handler."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from dispatcher.sandbox.jsonapi import error_document, gateway_page
from dispatcher.sandbox.state import RECORDED_HEADERS, Fault, SandboxState, Throttle, now_iso
from dispatcher.sandbox.validation import ROUTES, Invalid, Route, profile_key

log = logging.getLogger("marketing.sandbox")
T = TypeVar("T")

JSON_API = "application/vnd.api+json"
ACCEPTED_CONTENT_TYPES = (JSON_API, "application/json")
CONTROL_PREFIX = "/_sandbox/"
CONTROL_MAX_BYTES = 1024 * 1024
_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?$")
_GATEWAY_STATUSES = (502, 504, 524)


class _Reject(Exception):
    """An error answer; raised by checks, sent and counted by the handler."""

    def __init__(self, status: int, **fields: str | None) -> None:
        super().__init__(status)
        self.status = status
        self.fields = fields


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True  # server_close() joins handler threads (after close() woke them)
    request_queue_size = 128  # listen backlog: the default 5 drops bursts of connections

    def __init__(self, host: str, port: int, state: SandboxState, api_key: str | None) -> None:
        self.state = state
        self.api_key = api_key
        self.closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            if self.closing.is_set():
                _shut(connection)
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def begin_close(self) -> None:
        """Wake handlers sleeping on a latency fault or idling on a keep-alive connection."""
        with self._connections_lock:
            self.closing.set()
            for connection in self._connections:
                _shut(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away (timed out, closed): nothing to report
        log.exception("sandbox: unexpected error serving %s", client_address)


def _shut(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "KlaviyoSandbox/1.0"
    sys_version = ""
    timeout = 60.0  # idle keep-alive connections
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: SandboxServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per request would cost more than the request

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        received_at = now_iso()
        url = urlsplit(self.path)
        route = ROUTES.get(url.path)
        body = self._read_body(route.max_bytes if route else CONTROL_MAX_BYTES)
        if body is None:
            return
        if url.path.startswith(CONTROL_PREFIX):
            _control(self, url.path, parse_qs(url.query), body)
        else:
            self._api(url.path, route, body, received_at)

    def _read_body(self, limit: int) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(411, "Send a Content-Length.")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._refuse(400, "Invalid Content-Length.")
            return None
        if length > limit:
            self._refuse(413, f"At most {limit} bytes are accepted here.")
            return None
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) != length:
            self.close_connection = True
            return None
        return body

    def _refuse(self, status: int, detail: str) -> None:
        """An error before the body was read: answer and drop the connection."""
        self.close_connection = True
        self.send(status, error_document(status, detail=detail))

    def _api(self, path: str, route: Route | None, body: bytes, received_at: str) -> None:
        fault = self.server.state.take_fault(path)
        if fault is not None and fault.latency_ms and self._sleep_interrupted(fault.latency_ms):
            return
        if fault is None or fault.status is None:
            retry_after = self.server.state.throttled(path)
            if retry_after is not None:
                fault = Fault(status=429, retry_after=retry_after)
        try:
            if fault is not None and fault.status is not None:
                raise _fault_reject(fault)
            route = self._check(path, route)
            document = _parse(body)
            unique_ids = route.validate(document)
        except Invalid as exc:
            self._reject(path, _Reject(400, detail=exc.detail, pointer=exc.pointer), received_at)
        except _Reject as exc:
            self._reject(path, exc, received_at)
        else:
            self._accept(route, document, body, unique_ids, received_at)

    def _sleep_interrupted(self, latency_ms: int) -> bool:
        """Wait out a latency fault; True (and drop the connection) if the sandbox closed."""
        if self.server.closing.wait(latency_ms / 1000):
            self.close_connection = True
            return True
        return False

    def _check(self, path: str, route: Route | None) -> Route:
        if route is None:
            raise _Reject(404, detail=f"No such endpoint: {path}")
        if self.command != "POST":
            raise _Reject(405, detail=f'Method "{self.command}" not allowed.', allow="POST")
        scheme, _, key = self.headers.get("Authorization", "").partition(" ")
        if scheme != "Klaviyo-API-Key" or not key.strip():
            raise _Reject(401)
        if self.server.api_key is not None and key.strip() != self.server.api_key:
            raise _Reject(401, title="Incorrect authentication credentials.")
        revision = self.headers.get("revision", "")
        if not _REVISION.match(revision):
            detail = "A valid revision header (YYYY-MM-DD) is required."
            raise _Reject(400, detail=detail, parameter="revision")
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise _Reject(415, detail=f'Unsupported media type "{content_type}" in request.')
        return route

    def _reject(self, path: str, reject: _Reject, received_at: str) -> None:
        fields = dict(reject.fields)
        retry_after, allow = fields.pop("retry_after", None), fields.pop("allow", None)
        headers = {"Retry-After": retry_after, "Allow": allow}
        if reject.status in _GATEWAY_STATUSES:
            reply, content_type = gateway_page(reject.status), "text/html"
        else:
            reply, content_type = error_document(reject.status, **fields), JSON_API
        code = fields.get("code") or ("" if content_type == "text/html" else _code_of(reply))
        self.server.state.reject(self.command, path, reject.status, code, received_at)
        self.send(reject.status, reply, content_type=content_type, headers=headers)

    def _accept(
        self, route: Route, document: Any, body: bytes, unique_ids: list[str], received_at: str
    ) -> None:
        state = self.server.state
        status, reply = route.success, b""
        if route.path == "/api/profile-import":
            profile_id, created = state.import_profile(profile_key(document))
            status = 201 if created else 200
            reply = _profile_reply(profile_id, document["data"]["attributes"])
        state.consent.apply(route.path, document, received_at)
        headers = {h: self.headers[h] for h in RECORDED_HEADERS if h in self.headers}
        state.record(self.command, route.path, headers, body, unique_ids, received_at)
        self.send(status, reply)

    def send(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str = JSON_API,
        headers: dict[str, str | None] | None = None,
    ) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            if value is not None:
                self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)


def _fault_reject(fault: Fault) -> _Reject:
    status = fault.status or 500
    retry_after = fault.retry_after
    if retry_after is None and status == 429:
        retry_after = 1
    detail = fault.detail
    if detail is None and status == 429:
        detail = f"Request was throttled. Expected available in {retry_after} second(s)."
    return _Reject(
        status,
        code=fault.code,
        detail=detail,
        pointer=fault.pointer,
        retry_after=None if retry_after is None else str(retry_after),
    )


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise _Reject(400, code="parse_error", title="Parse error.", detail=str(exc)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _code_of(reply: bytes) -> str:
    code: str = json.loads(reply)["errors"][0]["code"]
    return code


def _profile_reply(profile_id: str, attributes: dict[str, Any]) -> bytes:
    data = {
        "type": "profile",
        "id": profile_id,
        "attributes": attributes,
        "links": {"self": f"https://a.klaviyo.com/api/profiles/{profile_id}/"},
    }
    return json.dumps({"data": data}).encode()


def _json(handler: _Handler, status: int, value: Any) -> None:
    handler.send(status, json.dumps(value).encode(), content_type="application/json")


def _control(handler: _Handler, path: str, query: dict[str, list[str]], body: bytes) -> None:
    """The /_sandbox/ endpoints (no authentication, never faulted, never recorded)."""
    state = handler.server.state
    match handler.command, path.rstrip("/"):
        case "GET", "/_sandbox/requests":
            filtered = query.get("path", [None])[0]
            handler.send(200, state.requests_json(filtered), content_type="application/json")
        case "DELETE", "/_sandbox/requests":
            state.reset()
            handler.send(204)
        case "GET", "/_sandbox/events":
            _json(handler, 200, state.event_counts())
        case "GET", "/_sandbox/profiles":
            _json(handler, 200, state.consent.view(query.get("email", [None])[0]))
        case "GET", "/_sandbox/rejections":
            _json(handler, 200, state.rejections())
        case "GET", "/_sandbox/faults":
            _json(handler, 200, state.faults())
        case "POST", "/_sandbox/faults":
            _add_faults(handler, body)
        case "DELETE", "/_sandbox/faults":
            state.clear_faults()
            handler.send(204)
        case "GET", "/_sandbox/throttles":
            _json(handler, 200, state.throttles())
        case "POST", "/_sandbox/throttles":
            _add_throttles(handler, body)
        case "GET", "/_sandbox/health":
            _json(handler, 200, {"status": "ok"})
        case _:
            handler.send(404, error_document(404, detail=f"No such control endpoint: {path}"))


def _add_faults(handler: _Handler, body: bytes) -> None:
    """POST /_sandbox/faults takes one fault object or a list of them (queued in order)."""
    faults = _control_items(handler, body, Fault.from_json, "fault")
    if faults is not None:
        for fault in faults:
            handler.server.state.add_fault(fault)
        _json(handler, 201, handler.server.state.faults())


def _add_throttles(handler: _Handler, body: bytes) -> None:
    """POST /_sandbox/throttles takes one throttle object or a list of them."""
    throttles = _control_items(handler, body, Throttle.from_json, "throttle")
    if throttles is not None:
        for throttle in throttles:
            handler.server.state.add_throttle(throttle)
        _json(handler, 201, handler.server.state.throttles())


def _control_items(
    handler: _Handler, body: bytes, parse: Callable[[Any], T], what: str
) -> list[T] | None:
    """One JSON object or a list of them, each parsed; None (answered 400) if any is bad."""
    try:
        document = json.loads(body or b"null")
        items = document if isinstance(document, list) else [document]
        return [parse(item) for item in items]
    except (ValueError, TypeError) as exc:
        handler.send(400, error_document(400, detail=f"Invalid {what}: {exc}"))
        return None
