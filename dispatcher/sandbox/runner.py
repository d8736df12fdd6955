"""Running the sandbox in-process: `start_sandbox()` serves it from a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from dispatcher.sandbox.control import plant_profile
from dispatcher.sandbox.imports import DEFAULT_PROCESSING_S
from dispatcher.sandbox.server import SandboxServer
from dispatcher.sandbox.state import Fault, SandboxState, Throttle


class Sandbox:
    """A running sandbox (background thread). Close it, or use it as a context manager."""

    def __init__(self, server: SandboxServer) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = "klaviyo-sandbox"
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

    @property
    def state(self) -> SandboxState:
        return self._server.state

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Accepted requests in arrival order, as GET /_sandbox/requests returns them."""
        return self.state.requests(path)

    def event_counts(self) -> dict[str, int]:
        """unique_id -> accepted submissions, as GET /_sandbox/events returns it."""
        return self.state.event_counts()

    def profiles(self, email: str | None = None) -> list[dict[str, Any]]:
        """Consent per profile, as GET /_sandbox/profiles[?email=] returns it."""
        return self.state.consent.view(email)

    def throttled(self) -> dict[str, Any]:
        """Per endpoint ("POST /api/events"): 429s answered (`throttled`) and, per window
        length in seconds, its limit and the most calls one account had accepted in one
        window (`peak`), as GET /_sandbox/throttled returns it."""
        return self.state.limiter.report()

    def plant_profile(self, **fields: Any) -> dict[str, Any]:
        """Set a stored profile's fields, properties, consent, suppression and lists, as
        POST /_sandbox/profiles does; the profile as Klaviyo would show it."""
        return plant_profile(self.state, fields, self.base_url)

    def rejections(self) -> list[dict[str, Any]]:
        return self.state.rejections()

    def add_fault(self, **fields: Any) -> None:
        """Queue a fault: path, status, times, retry_after, latency_ms, code, detail, pointer."""
        self.state.add_fault(Fault(**fields))

    def add_throttle(self, **fields: Any) -> None:
        """Rate-limit matching requests: path, limit (requests), window_s (seconds)."""
        self.state.add_throttle(Throttle(**fields))

    def clear_faults(self) -> None:
        """Forget queued faults and throttles."""
        self.state.clear_faults()

    def reset(self) -> None:
        self.state.reset()

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


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_key: str | None = None,
    rate_limits: bool = True,
    clock: Callable[[], float] = time.time,
    import_processing_s: float = DEFAULT_PROCESSING_S,
) -> Sandbox:
    """Serve the Klaviyo subset on host:port (0 = a free port). With `api_key`, only
    `Authorization: Klaviyo-API-Key <api_key>` is accepted; otherwise any well-formed key.

    Klaviyo's rate limits apply per key unless `rate_limits=False`, which is only for
    measuring ceilings (the limits are still counted, see `Sandbox.throttled`). `clock`
    (epoch seconds) drives the rate windows, arrival times and import jobs, which complete
    `import_processing_s` after they were accepted."""
    state = SandboxState(
        clock=clock, rate_limits=rate_limits, import_processing_s=import_processing_s
    )
    return Sandbox(SandboxServer(host, port, state, api_key))
