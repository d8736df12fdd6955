"""A sandbox's clock: the time source it was started with (the wall clock, or a test's virtual
one) plus an offset that tests move forward through POST /_sandbox/clock, so that a flow's
delayed messages fall due without anyone sleeping. Everything the sandbox times follows it:
arrivals, rate windows, import jobs and the flows' messages. It never goes back."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from dispatcher.sandbox.common.recording import iso


class SandboxClock:
    """Epoch seconds: `source()` plus the offset moved on by `advance`."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._source() + self._offset

    def at_wall(self, wall_s: float | None) -> float:
        """The sandbox's time at the wall-clock instant `wall_s` (when the kernel received
        a request, say): that instant plus the offset when the sandbox runs on the wall
        clock. On a test's virtual clock, which wall time does not move, and for an
        instant not known (None): now."""
        now = self()
        if wall_s is None or self._source is not time.time:
            return now
        return min(wall_s + self._offset, now)

    @property
    def offset_s(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock `seconds` forward; the new time."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("advance_s must be a finite number of seconds, at least 0")
        with self._lock:
            self._offset += float(seconds)
        return self()

    def to_json(self) -> dict[str, Any]:
        """GET /_sandbox/clock: {"now", "now_s", "offset_s"}."""
        now = self()
        return {"now": iso(now), "now_s": now, "offset_s": self._offset}
