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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dispatcher.sandbox.control import control
from dispatcher.sandbox.endpoints import IMPORT_JOBS, Endpoint, NoEndpoint, resolve
from dispatcher.sandbox.jsonapi import JSON_API, error_document, gateway_page, throttled_document
from dispatcher.sandbox.rates import Refused
from dispatcher.sandbox.reads import READERS, ReadError
from dispatcher.sandbox.state import RECORDED_HEADERS, Arrival, Fault, SandboxState
from dispatcher.sandbox.validation import ROUTES, Invalid, Route

log = logging.getLogger("marketing.sandbox")

ACCEPTED_CONTENT_TYPES = (JSON_API, "application/json")
CONTROL_PREFIX = "/_sandbox/"
CONTROL_MAX_BYTES = 1024 * 1024
_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?$")
_GATEWAY_STATUSES = (502, 504, 524)


class _Reject(Exception):
    """An error answer; raised by checks, sent and counted by the handler."""

    def __init__(self, status: int, *, document: bytes | None = None, **fields: str | None) -> None:
        super().__init__(status)
        self.status = status
        self.document = document  # the whole body, when it is not built from `fields`
        self.fields = fields


def _throttled(retry_after: int) -> _Reject:
    """Klaviyo's 429: its exact body, Retry-After in whole seconds, no RateLimit-* headers."""
    document = throttled_document(retry_after)
    return _Reject(429, document=document, code="throttled", retry_after=str(retry_after))


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
        self.rate_headers: dict[str, str] = {}  # this request's RateLimit-* headers
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
        self.rate_headers = {}
        url = urlsplit(self.path)
        route = ROUTES.get(url.path.rstrip("/")) if self.command == "POST" else None
        body = self._read_body(route.max_bytes if route else CONTROL_MAX_BYTES)
        if body is None:
            return
        if url.path.startswith(CONTROL_PREFIX):
            control(self, url.path, parse_qs(url.query), body)
            return
        state = self.server.state
        state.settle()
        try:
            resolved: tuple[Endpoint, dict[str, str]] | NoEndpoint = resolve(self.command, url.path)
        except NoEndpoint as exc:
            resolved = exc
        name = None if isinstance(resolved, NoEndpoint) else resolved[0].name
        arrival = Arrival(self.command, url.path, url.query, name, state.clock())
        self._api(arrival, resolved, body)

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

    def _api(
        self,
        arrival: Arrival,
        resolved: tuple[Endpoint, dict[str, str]] | NoEndpoint,
        body: bytes,
    ) -> None:
        fault = self.server.state.take_fault(arrival.path)
        if fault is not None and fault.latency_ms and self._sleep_interrupted(fault.latency_ms):
            return
        if fault is None or fault.status is None:
            retry_after = self.server.state.throttled(arrival.path)
            if retry_after is not None:
                fault = Fault(status=429, retry_after=retry_after)
        try:
            if fault is not None and fault.status is not None:
                raise _fault_reject(fault)
            endpoint, params = self._check(arrival.path, resolved)
            if endpoint.method == "GET":
                self._read(arrival, endpoint, params)
                return
            route = ROUTES[endpoint.template]
            self._check_content_type()
            document = _parse(body)
            unique_ids = route.validate(document)
        except Invalid as exc:
            self._reject(arrival, _Reject(400, detail=exc.detail, pointer=exc.pointer))
        except ReadError as exc:
            reject = _Reject(exc.status, detail=exc.detail, parameter=exc.parameter)
            self._reject(arrival, reject)
        except _Reject as exc:
            self._reject(arrival, exc)
        else:
            self._accept(arrival, route, document, body, unique_ids)

    def _sleep_interrupted(self, latency_ms: int) -> bool:
        """Wait out a latency fault; True (and drop the connection) if the sandbox closed."""
        if self.server.closing.wait(latency_ms / 1000):
            self.close_connection = True
            return True
        return False

    def _check(
        self, path: str, resolved: tuple[Endpoint, dict[str, str]] | NoEndpoint
    ) -> tuple[Endpoint, dict[str, str]]:
        """Klaviyo's checks before the body: endpoint, method, key, rate limit, revision."""
        if isinstance(resolved, NoEndpoint):
            if not resolved.allow:
                raise _Reject(404, detail=f"No such endpoint: {path}")
            allow = ", ".join(resolved.allow)
            raise _Reject(405, detail=f'Method "{self.command}" not allowed.', allow=allow)
        scheme, _, key = self.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme != "Klaviyo-API-Key" or not key:
            raise _Reject(401)
        if self.server.api_key is not None and key != self.server.api_key:
            raise _Reject(401, title="Incorrect authentication credentials.")
        decision = self.server.state.limiter.admit(key, resolved[0].name)
        if isinstance(decision, Refused):
            raise _throttled(decision.retry_after)
        if decision is not None:
            self.rate_headers = decision.headers()
        revision = self.headers.get("revision", "")
        if not _REVISION.match(revision):
            detail = "A valid revision header (YYYY-MM-DD) is required."
            raise _Reject(400, detail=detail, parameter="revision")
        return resolved

    def _check_content_type(self) -> None:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise _Reject(415, detail=f'Unsupported media type "{content_type}" in request.')

    @property
    def base_url(self) -> str:
        """Where links in answers point: this sandbox, as the client addressed it."""
        host = self.headers.get("Host") or f"{self.server.server_name}:{self.server.server_port}"
        return f"http://{host}"

    def _reject(self, arrival: Arrival, reject: _Reject) -> None:
        fields = dict(reject.fields)
        retry_after, allow = fields.pop("retry_after", None), fields.pop("allow", None)
        headers = {"Retry-After": retry_after, "Allow": allow}
        if reject.document is not None:
            reply, content_type = reject.document, JSON_API
        elif reject.status in _GATEWAY_STATUSES:
            reply, content_type = gateway_page(reject.status), "text/html"
        else:
            reply, content_type = error_document(reject.status, **fields), JSON_API
        code = fields.get("code") or ("" if content_type == "text/html" else _code_of(reply))
        self.server.state.reject(arrival, reject.status, code)
        self.send(reject.status, reply, content_type=content_type, headers=headers)

    def _read(self, arrival: Arrival, endpoint: Endpoint, params: dict[str, str]) -> None:
        query = parse_qs(arrival.query, keep_blank_values=True)
        document = READERS[endpoint.name](self.server.state, params, query, self.base_url)
        self._record(arrival, b"", [])
        self.send(200, json.dumps(document).encode())

    def _accept(
        self, arrival: Arrival, route: Route, document: Any, body: bytes, unique_ids: list[str]
    ) -> None:
        state = self.server.state
        status, reply = route.success, b""
        if route.path == "/api/profile-import":
            attributes = document["data"]["attributes"]
            profile_id, created = state.profiles.upsert(attributes, arrival.received_at)
            status = 201 if created else 200
            reply = _profile_reply(profile_id, attributes)
        elif route.path == IMPORT_JOBS:
            job = state.start_import(document, arrival.received_s)
            resource = job.resource(arrival.received_s, self.base_url)
            reply = json.dumps({"data": resource, "links": resource["links"]}).encode()
        state.apply_consent(route.path, document, arrival.received_at)
        self._record(arrival, body, unique_ids)
        self.send(status, reply)

    def _record(self, arrival: Arrival, body: bytes, unique_ids: list[str]) -> None:
        headers = {h: self.headers[h] for h in RECORDED_HEADERS if h in self.headers}
        self.server.state.record(arrival, headers, body, unique_ids)

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
        rate_headers = {} if status == 429 else self.rate_headers
        for name, value in {**rate_headers, **(headers or {})}.items():
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
    if status == 429 and fault.code is None and fault.detail is None and fault.pointer is None:
        # Klaviyo's body, with the fault's Retry-After as given (a test may ask for 0).
        return _throttled(1 if retry_after is None else retry_after)
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
