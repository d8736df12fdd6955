"""Queued faults: answer the next requests to a path with an error status, after a delay."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Fault:
    """Answer the next `times` requests whose path starts with `path` (any path when None)
    with `status`, after `latency_ms`. Without a status the request is only delayed.
    `code`, `detail` and `pointer` shape the error body where the provider's has them."""

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
        return cls(**object_fields(cls, "fault", document, {"path", "code", "detail", "pointer"}))

    def matches(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)


def object_fields(cls: type[Any], what: str, document: Any, strings: set[str]) -> dict[str, Any]:
    """A JSON object's fields for dataclass `cls`: known names only, strings or integers."""
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


def parse_items(body: bytes, parse: Callable[[Any], T]) -> list[T]:
    """A control body of one JSON object or a list of them, each parsed (ValueError or
    TypeError when any is bad)."""
    document = json.loads(body or b"null")
    items = document if isinstance(document, list) else [document]
    return [parse(item) for item in items]


class FaultQueue:
    """Faults in the order they were queued; the first that matches a path is used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, path: str) -> Fault | None:
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

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
