"""What the ActiveCampaign sandbox holds: the account (under one lock, taken for each call),
its settings, the request log, answered errors, rate-limit refusals, faults and windows."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dispatcher.sandbox.activecampaign.store import Account, iso, seeded_account
from dispatcher.sandbox.common.faults import FaultQueue
from dispatcher.sandbox.common.recording import RecordedRequest
from dispatcher.sandbox.common.windows import WindowCounter

DEFAULT_IMPORT_DELAY_S = 2.0


@dataclass(frozen=True)
class Settings:
    api_key: str | None = None  # None: any non-empty Api-Token is the account's
    tracking_actid: str | None = None  # None: any non-empty actid / key is accepted
    tracking_key: str | None = None
    rate_limits: bool = True
    import_delay_s: float = DEFAULT_IMPORT_DELAY_S  # from queued to completed


class ActiveCampaignState:
    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.faults = FaultQueue()
        self.windows = WindowCounter(clock)
        self._account_lock = threading.Lock()
        self._account = seeded_account(clock())
        self._log_lock = threading.Lock()
        self._seq = 0
        self._requests: list[RecordedRequest] = []
        self._rejections: list[dict[str, Any]] = []
        self._throttled: list[dict[str, Any]] = []

    @contextmanager
    def account(self) -> Iterator[Account]:
        """The account, held for one call (calls to one account apply one at a time)."""
        with self._account_lock:
            yield self._account

    # the log

    def record(
        self,
        method: str,
        path: str,
        query: str,
        endpoint: str,
        headers: dict[str, str],
        body: bytes,
        at: float,
    ) -> None:
        """`endpoint` names the route ("GET /api/3/contacts/{id}"); `at` is epoch seconds."""
        with self._log_lock:
            self._seq += 1
            extra = (("query", query), ("endpoint", endpoint), ("received_s", at))
            self._requests.append(
                RecordedRequest(self._seq, method, path, iso(at), headers, body, extra)
            )

    def reject(self, method: str, path: str, status: int, body: Any, at: float) -> None:
        with self._log_lock:
            self._seq += 1
            self._rejections.append(
                {"seq": self._seq, "method": method, "path": path, "status": status}
                | {"body": body, "received_at": iso(at)}
            )

    def throttle(
        self, method: str, path: str, status: int, window: str, retry_after: int, at: float
    ) -> None:
        with self._log_lock:
            self._throttled.append(
                {"method": method, "path": path, "status": status, "window": window}
                | {"retry_after": retry_after, "received_at": iso(at)}
            )

    def requests_json(self, path: str | None = None) -> bytes:
        with self._log_lock:
            selected = [r for r in self._requests if path is None or r.path == path]
        return b"[" + b",".join(r.to_json() for r in selected) + b"]"

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        parsed: list[dict[str, Any]] = json.loads(self.requests_json(path))
        return parsed

    def rejections(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return [dict(r) for r in self._rejections]

    def throttled(self) -> dict[str, Any]:
        """Rate-limit refusals in order, and the most calls one window of each bucket took."""
        with self._log_lock:
            answers = [dict(t) for t in self._throttled]
        return {"answers": answers, "peaks": self.windows.peaks()}

    def clear_log(self) -> None:
        """Forget recorded requests, rejections and refusals (not the account)."""
        with self._log_lock:
            self._requests.clear()
            self._rejections.clear()
            self._throttled.clear()

    def reset(self) -> None:
        """A new account (seeded), an empty log, no faults, fresh windows."""
        self.clear_log()
        self.faults.clear()
        self.windows.clear()
        with self._account_lock:
            self._account = seeded_account(self.clock())
