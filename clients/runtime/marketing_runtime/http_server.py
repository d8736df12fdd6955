"""An ASGI app's HTTP server: uvicorn, in the process's own event loop (no
thread, no process of its own). The dispatcher's webhook receiver and the
service's preference pages run on it; only processes that have uvicorn (the
dispatcher's and the service's extras) import this module.

The socket is bound before anything else starts, so an address another
program holds fails the process's start. It is bound with SO_REUSEPORT
where the system has it: several replicas on one host (or a test's) share the
address, and the kernel spreads the requests over them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Self

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

# In-flight requests get this long to finish once the server stops (a webhook's
# publish waits up to its PUBLISH_TIMEOUT_S).
GRACEFUL_SHUTDOWN_S = 10
# Requests in hand at once by default; more are answered 503 by uvicorn. A webhook
# may hold a body of up to 5 MB.
MAX_CONCURRENT_REQUESTS = 64
BACKLOG = 256


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process handles SIGTERM and
    SIGINT itself, and stops this server then."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedHttpServer:
    """One listening socket and, once started, the uvicorn server on it; `what`
    names it in logs and errors ("webhook receiver", "preference pages")."""

    def __init__(self, sock: socket.socket, what: str) -> None:
        self._socket = sock
        self.what = what
        self.host: str = sock.getsockname()[0]
        self.port: int = sock.getsockname()[1]  # the one chosen, when asked for port 0
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def listen(cls, address: str, what: str) -> Self:
        """Bound to `address` ("host:port"; port 0: any free one) and listening."""
        host, port = split_address(address)
        try:
            family, _, _, _, sockaddr = socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            sock = socket.create_server(
                sockaddr,
                family=family,
                backlog=BACKLOG,
                reuse_port=hasattr(socket, "SO_REUSEPORT"),
            )
        except OSError as exc:
            raise OSError(exc.errno, f"{what}: cannot listen on {address}: {exc.strerror}") from exc
        sock.setblocking(False)
        return cls(sock, what)

    def start(self, app: ASGIApp, max_concurrent: int = MAX_CONCURRENT_REQUESTS) -> None:
        """Serve `app` (in a task of the running loop) until `stop()`, answering 503 past
        `max_concurrent` requests in hand."""
        if self._server is not None:
            return
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            log_level="warning",
            log_config=None,  # the process's logging, not uvicorn's own handlers
            lifespan="off",
            access_log=False,
            server_header=False,
            limit_concurrency=max_concurrent,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(
            self._server.serve(sockets=[self._socket]), name=f"{self.what} server"
        )
        log.info("%s listening on %s:%d", self.what, self.host, self.port)

    def request_stop(self) -> None:
        """Take no new requests; those in hand go on (`stop()` waits for them)."""
        if self._server is not None:
            self._server.should_exit = True

    async def stop(self) -> None:
        """Take no new requests, let those in hand finish (up to
        GRACEFUL_SHUTDOWN_S), close. Idempotent."""
        self.request_stop()
        try:
            if self._task is not None:
                await self._task
        except Exception:
            log.exception("the %s server failed", self.what)
        finally:
            self._task = None
            self._socket.close()


def split_address(address: str) -> tuple[str, int]:
    """ "host:port" ("[::1]:8091" for IPv6; an empty host: every interface)."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"not a host:port address: {address!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)
