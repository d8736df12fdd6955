"""Serving a sandbox from a background thread, closed by `close()` or a `with` block, with
the in-process side of the shared control endpoints (common/control.py)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Self

from dispatcher.sandbox.common.control import Controlled
from dispatcher.sandbox.common.faults import Fault
from dispatcher.sandbox.common.http import SandboxHTTPServer


class RunningServer:
    """A sandbox server running on a daemon thread."""

    def __init__(self, server: SandboxHTTPServer, name: str, controlled: Controlled) -> None:
        self._server = server
        self._controlled = controlled
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = name
        self._closed = False
        self._thread.start()

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Accepted requests in arrival order, as GET /_sandbox/requests returns them."""
        return self._controlled.log.requests(path)

    def rejections(self) -> list[dict[str, Any]]:
        """Answered errors, as GET /_sandbox/rejections returns them."""
        return self._controlled.log.rejections()

    def throttled(self) -> dict[str, Any]:
        """Rate-limit refusals and peaks, as GET /_sandbox/throttled returns them."""
        return self._controlled.throttled()

    def add_fault(self, **fields: Any) -> None:
        """Queue a fault: path, status, times, retry_after, latency_ms, code, detail, pointer."""
        self._controlled.faults.add(Fault(**fields))

    def clear_faults(self) -> None:
        self._controlled.clear_faults()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.begin_close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
