"""The request log every sandbox keeps: accepted requests (GET /_sandbox/requests) and
answered errors (GET /_sandbox/rejections), numbered in one sequence."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def iso(epoch_s: float) -> str:
    """An instant on the sandbox's clock, to the microsecond."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Arrival:
    """Where and when a request came in, on the sandbox's clock."""

    method: str
    path: str
    query: str
    endpoint: str | None  # "POST /api/events", "GET /api/3/contacts/{id}"; None: no route
    received_s: float  # epoch seconds

    @property
    def received_at(self) -> str:
        return iso(self.received_s)


@dataclass(frozen=True)
class RecordedRequest:
    seq: int
    arrival: Arrival
    headers: dict[str, str]
    body: bytes  # JSON text, spliced into answers without re-encoding (b"" for none)

    def to_json(self) -> bytes:
        arrival = self.arrival
        head = json.dumps(
            {
                "seq": self.seq,
                "method": arrival.method,
                "path": arrival.path,
                "query": arrival.query,
                "endpoint": arrival.endpoint,
                "received_at": arrival.received_at,
                "received_s": arrival.received_s,
                "headers": self.headers,
            }
        ).encode()
        return b"".join((head[:-1], b',"body":', self.body or b"null", b"}"))


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._requests: list[RecordedRequest] = []
        self._rejections: list[dict[str, Any]] = []

    def record(self, arrival: Arrival, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self._seq += 1
            self._requests.append(RecordedRequest(self._seq, arrival, headers, body))

    def reject(self, arrival: Arrival, status: int, **details: Any) -> None:
        """An answered error; `details` say what the sandbox's provider answers with (Klaviyo's
        error `code`, ActiveCampaign's whole `body`)."""
        with self._lock:
            self._seq += 1
            self._rejections.append(
                {
                    "seq": self._seq,
                    "method": arrival.method,
                    "path": arrival.path,
                    "endpoint": arrival.endpoint,
                    "status": status,
                    **details,
                    "received_at": arrival.received_at,
                }
            )

    def requests_json(self, path: str | None = None) -> bytes:
        """GET /_sandbox/requests[?path=]: the accepted requests (to `path` only, if given)."""
        with self._lock:
            selected = [r for r in self._requests if path is None or r.arrival.path == path]
        return b"[" + b",".join(r.to_json() for r in selected) + b"]"

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        parsed: list[dict[str, Any]] = json.loads(self.requests_json(path))
        return parsed

    def rejections(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._rejections]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._rejections.clear()
