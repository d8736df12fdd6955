"""What the sandbox remembers: accepted requests, the unique_id index, rejections, queued
faults, rate-limit windows and the fake account's profiles, consent and import jobs. One lock
per part; every operation under one is O(1) or a copy."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from dispatcher.sandbox.consent import ConsentBook
from dispatcher.sandbox.imports import (
    DEFAULT_PROCESSING_S,
    ImportErrorItem,
    ImportJob,
    ImportJobs,
    iso,
)
from dispatcher.sandbox.profiles import ProfileStore
from dispatcher.sandbox.rates import RateLimiter
from dispatcher.sandbox.validation import import_list_ids, import_profile_errors

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
        return cls(**_fields(cls, "fault", document, {"path", "code", "detail", "pointer"}))

    def matches(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)


@dataclass(frozen=True)
class Throttle:
    """A rate limit like Klaviyo's: at most `limit` requests whose path starts with
    `path` (any path when None) per `window_s`-second window, a window starting with
    its first request. Past it: 429 with Retry-After, the seconds left in the window."""

    path: str | None = None
    limit: int = 1
    window_s: int = 1

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s < 1:
            raise ValueError("limit and window_s must be at least 1")

    @classmethod
    def from_json(cls, document: Any) -> Throttle:
        return cls(**_fields(cls, "throttle", document, {"path"}))

    def matches(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)


def _fields(cls: type[Any], what: str, document: Any, strings: set[str]) -> dict[str, Any]:
    """A JSON object's fields for `cls`: known names only, strings or integers."""
    if not isinstance(document, dict):
        raise ValueError(f"a {what} is a JSON object")
    unknown = set(document) - {field.name for field in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} fields: {sorted(unknown)}")
    for name, value in document.items():
        wanted = str if name in strings else int
        if value is not None and (isinstance(value, bool) or not isinstance(value, wanted)):
            raise ValueError(f"{name} must be {'a string' if wanted is str else 'an integer'}")
    return document


@dataclass
class _Window:
    """The current window of one throttle: when it started, requests it admitted."""

    throttle: Throttle
    started: float = -math.inf
    admitted: int = 0


@dataclass(frozen=True)
class Arrival:
    """Where and when a request came in, on the sandbox's clock."""

    method: str
    path: str
    query: str
    endpoint: str | None  # "POST /api/events"; None when no endpoint has the path
    received_s: float  # epoch seconds

    @property
    def received_at(self) -> str:
        return iso(self.received_s)


@dataclass(frozen=True)
class _Recorded:
    seq: int
    arrival: Arrival
    headers: dict[str, str]
    body: bytes  # the raw JSON text, spliced into answers without re-encoding

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


class SandboxState:
    """`clock` (epoch seconds) times arrivals, Klaviyo's rate windows and import jobs;
    `monotonic` times the opt-in throttles. Both are injectable for virtual-clock tests."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
        rate_limits: bool = True,
        import_processing_s: float = DEFAULT_PROCESSING_S,
    ) -> None:
        self._monotonic = monotonic
        self.clock = clock
        self.limiter = RateLimiter(clock, enforce=rate_limits)
        self.profiles = ProfileStore()
        self.imports = ImportJobs(import_processing_s)
        self._throttles: list[_Window] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._requests: list[_Recorded] = []
        self._rejections: list[dict[str, Any]] = []
        self._events: dict[str, int] = {}
        self._faults: list[Fault] = []
        self.consent = ConsentBook()  # account state: kept by reset(), like profiles

    def now_iso(self) -> str:
        return iso(self.clock())

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
        """Forget queued faults and throttles."""
        with self._lock:
            self._faults.clear()
            self._throttles.clear()

    # throttles

    def add_throttle(self, throttle: Throttle) -> None:
        with self._lock:
            self._throttles.append(_Window(throttle))

    def throttled(self, path: str) -> int | None:
        """Retry-After seconds when a throttle refuses this request; None admits it
        (and counts it in every matching throttle's window)."""
        now = self._monotonic()
        with self._lock:
            windows = [w for w in self._throttles if w.throttle.matches(path)]
            for window in windows:
                if now - window.started >= window.throttle.window_s:
                    window.started, window.admitted = now, 0
            for window in windows:
                if window.admitted >= window.throttle.limit:
                    left = window.started + window.throttle.window_s - now
                    return max(1, math.ceil(left))
            for window in windows:
                window.admitted += 1
        return None

    def throttles(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(window.throttle) for window in self._throttles]

    # recordings

    def record(
        self, arrival: Arrival, headers: dict[str, str], body: bytes, unique_ids: list[str]
    ) -> None:
        with self._lock:
            self._seq += 1
            self._requests.append(_Recorded(self._seq, arrival, headers, body))
            events = self._events
            for unique_id in unique_ids:
                events[unique_id] = events.get(unique_id, 0) + 1

    def reject(self, arrival: Arrival, status: int, code: str) -> None:
        with self._lock:
            self._seq += 1
            self._rejections.append(
                {
                    "seq": self._seq,
                    "method": arrival.method,
                    "path": arrival.path,
                    "endpoint": arrival.endpoint,
                    "status": status,
                    "code": code,
                    "received_at": arrival.received_at,
                }
            )

    # the account

    def apply_consent(self, path: str, document: dict[str, Any], at: str) -> None:
        """A consent job: the consent book changes, and the profiles it names exist."""
        if not self.consent.applies_to(path):
            return
        self.consent.apply(path, document, at)
        attributes = document.get("data", {}).get("attributes", {})
        for item in (attributes.get("profiles") or {}).get("data", ()):
            self.profiles.upsert(_identity(item["attributes"]), at)

    def start_import(self, document: dict[str, Any], now: float) -> ImportJob:
        """A validated bulk import job: profiles that cannot be imported become its errors."""
        data = document["data"]
        valid, errors = [], []
        for index, item in enumerate(data["attributes"]["profiles"]["data"]):
            attributes = item["attributes"]
            problem = import_profile_errors(attributes, index)
            if problem is None:
                valid.append(attributes)
            else:
                error = ImportErrorItem(f"{index:05d}", problem.pointer, problem.detail, attributes)
                errors.append(error)
        return self.imports.add(valid, errors, import_list_ids(data), now)

    def settle(self) -> None:
        """Apply the import jobs that completed by now (called before serving a request)."""
        now = self.clock()
        for job in self.imports.take_completed(now):
            at = iso(job.created_s + job.processing_s)
            for attributes in job.profiles:
                self.profiles.upsert(attributes, at)
                self.consent.join_lists(attributes, job.list_ids)

    def reset(self) -> None:
        """Forget recorded requests, rejections and the unique_id index (not faults or
        profiles: those are the account's state)."""
        with self._lock:
            self._requests.clear()
            self._rejections.clear()
            self._events.clear()
        self.limiter.forget_observations()

    # views

    def requests_json(self, path: str | None = None) -> bytes:
        with self._lock:
            selected = [r for r in self._requests if path is None or r.arrival.path == path]
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


def _identity(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: attributes[k] for k in ("email", "phone_number") if attributes.get(k)}
