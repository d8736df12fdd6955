"""The HTTP side every sandbox shares: a threading HTTP/1.1 server (keep-alive) that can wake
its handlers when it closes, and a handler base with body reading and answering."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import socketserver
import sys
import threading
from abc import ABCMeta, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dispatcher.sandbox.common.arrivals import StampedReader, stamp_arrivals
from dispatcher.sandbox.common.clock import SandboxClock

log = logging.getLogger("marketing.sandbox")


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True  # server_close() joins handler threads (after close() woke them)
    # Listen backlog. The default 5 drops bursts of connections, and a dropped one is
    # retried by the client's TCP a second later: a request then arrives, and is counted
    # against the rate windows, a second after it was sent. A dispatcher's httpx pool
    # opens up to 100 at once, and each replica has its own.
    request_queue_size = 1024

    def __init__(self, host: str, port: int, handler: type[SandboxHandler]) -> None:
        self.closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on DNS.
        socketserver.TCPServer.server_bind(self)
        stamp_arrivals(self.socket)
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


class SandboxHandler(BaseHTTPRequestHandler, metaclass=ABCMeta):
    """Subclasses implement `handle_request` and `error_body`."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    timeout = 60.0  # idle keep-alive connections
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    content_type = "application/json"  # of answers, unless a call says otherwise
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # read through `StampedReader` instead
        self._reader = StampedReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self.server.track(self.connection)

    def handle_one_request(self) -> None:
        self._reader.mark()
        super().handle_one_request()

    def arrived(self, clock: SandboxClock) -> float:
        """When the request being handled came in, on the sandbox's clock: a provider
        counts it against its rate windows then, not when a thread of this busy
        sandbox got round to it (`arrivals`)."""
        return clock.at_wall(self._reader.first_received)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per request would cost more than the request

    def do_GET(self) -> None:
        self.handle_request()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    @abstractmethod
    def handle_request(self) -> None:
        """Answer the request (each provider's sandbox routes it)."""

    @abstractmethod
    def error_body(self, status: int, detail: str) -> bytes:
        """The provider's error body for a refusal before the request was read."""

    def read_body(self, limit: int) -> bytes | None:
        """The request body, or None when it was refused (answered) or cut short."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.refuse(411, "Send a Content-Length.")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.refuse(400, "Invalid Content-Length.")
            return None
        if length > limit:
            self.refuse(413, f"At most {limit} bytes are accepted here.")
            return None
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) != length:
            self.close_connection = True
            return None
        return body

    def refuse(self, status: int, detail: str) -> None:
        """An error before the body was read: answer and drop the connection."""
        self.close_connection = True
        self.send(status, self.error_body(status, detail))

    def sleep_interrupted(self, latency_ms: int) -> bool:
        """Wait out a latency fault; True (and drop the connection) if the sandbox closed."""
        if self.server.closing.wait(latency_ms / 1000):
            self.close_connection = True
            return True
        return False

    def send(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: dict[str, str | None] | None = None,
    ) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type or self.content_type)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        for name, value in {**self.answer_headers(status), **(headers or {})}.items():
            if value is not None:
                self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def answer_headers(self, status: int) -> dict[str, str]:
        """Headers a sandbox adds to its answers (before a call's own)."""
        return {}

    def send_json(self, status: int, value: Any) -> None:
        self.send(status, json.dumps(value).encode(), content_type="application/json")
