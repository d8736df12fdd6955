"""What the sandbox remembers: accepted requests, the unique_id index, rejections, queued
faults and the fake account's profiles. One lock; every operation under it is O(1) or a copy."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from dispatcher.sandbox.consent import ConsentBook

RECORDED_HEADERS = ("revision", "content-type", "accept", "user-agent")


@dataclass(frozen=True)
class Fault:
    """Answer the next `times` requests whose path starts with `path` (any path when None)
    with `status`, after `latency_ms`. Without a status the request is only delayed."""

    path: str | None = None
    status: int | None = None
    times: int = 1
    retry_after: int | None = None
    latency_ms: int | None = None
    code: str | None = None
    detail: str | None = None
    pointer: str | None = None

    def __post_init__(self) -> None:
        if self.status is None and self.latency_ms is None:
            raise ValueError("a fault needs a status, a latency_ms or both")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError("status must be a 4xx or 5xx code")
        if self.times < 1:
            raise ValueError("times must be at least 1")
        for name in ("retry_after", "latency_ms"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")

    @classmethod
    def from_json(cls, document: Any) -> Fault:
        if not isinstance(document, dict):
            raise ValueError("a fault is a JSON object")
        unknown = set(document) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        types = {"path": str, "code": str, "detail": str, "pointer": str}
        for name, value in document.items():
            wanted = types.get(name, int)
            if value is not None and (isinstance(value, bool) or not isinstance(value, wanted)):
                raise ValueError(f"{name} must be {'a string' if wanted is str else 'an integer'}")
        return cls(**document)

    def matches(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)


@dataclass(frozen=True)
class _Recorded:
    seq: int
    method: str
    path: str
    received_at: str
    headers: dict[str, str]
    body: bytes  # the raw JSON text, spliced into answers without re-encoding

    def to_json(self) -> bytes:
        head = json.dumps(
            {
                "seq": self.seq,
                "method": self.method,
                "path": self.path,
                "received_at": self.received_at,
                "headers": self.headers,
            }
        ).encode()
        return b"".join((head[:-1], b',"body":', self.body or b"null", b"}"))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def fake_profile_id(key: str) -> str:
    """A stable 26-character id shaped like Klaviyo's, derived from the profile's identity."""
    digest = hashlib.sha256(key.encode()).digest()
    return "01" + base64.b32encode(digest).decode()[:24]


class SandboxState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._requests: list[_Recorded] = []
        self._rejections: list[dict[str, Any]] = []
        self._events: dict[str, int] = {}
        self._faults: list[Fault] = []
        self._profiles: set[str] = set()
        self.consent = ConsentBook()  # account state: kept by reset(), like profiles

    # faults

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take_fault(self, path: str) -> Fault | None:
        """Consume one use of the first queued fault that matches `path`."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(path):
                    if fault.times == 1:
                        del self._faults[index]
                    else:
                        self._faults[index] = replace(fault, times=fault.times - 1)
                    return fault
        return None

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # recordings

    def record(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        unique_ids: list[str],
        received_at: str,
    ) -> None:
        with self._lock:
            self._seq += 1
            self._requests.append(_Recorded(self._seq, method, path, received_at, headers, body))
            events = self._events
            for unique_id in unique_ids:
                events[unique_id] = events.get(unique_id, 0) + 1

    def reject(self, method: str, path: str, status: int, code: str, received_at: str) -> None:
        with self._lock:
            self._seq += 1
            self._rejections.append(
                {
                    "seq": self._seq,
                    "method": method,
                    "path": path,
                    "status": status,
                    "code": code,
                    "received_at": received_at,
                }
            )

    def import_profile(self, key: str) -> tuple[str, bool]:
        """(profile id, created) for a profile import keyed on `key`."""
        with self._lock:
            created = key not in self._profiles
            self._profiles.add(key)
        return fake_profile_id(key), created

    def reset(self) -> None:
        """Forget recorded requests, rejections and the unique_id index (not faults or
        profiles: those are the account's state)."""
        with self._lock:
            self._requests.clear()
            self._rejections.clear()
            self._events.clear()

    # views

    def requests_json(self, path: str | None = None) -> bytes:
        with self._lock:
            selected = [r for r in self._requests if path is None or r.path == path]
        return b"[" + b",".join(r.to_json() for r in selected) + b"]"

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        parsed: list[dict[str, Any]] = json.loads(self.requests_json(path))
        return parsed

    def rejections(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._rejections]

    def event_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._events)
