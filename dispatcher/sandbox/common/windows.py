"""Fixed rate windows aligned to the epoch (a 1-s window is one epoch second, a 60-s one an
epoch minute), counted per named window, with the highest count any window reached."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RateWindow:
    """At most `limit` admitted calls per `seconds`-long window of the bucket `name`."""

    name: str
    limit: int
    seconds: int


@dataclass(frozen=True)
class Refusal:
    window: RateWindow
    retry_after: int  # whole seconds until the refusing window ends (at least 1)


class WindowCounter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._current: dict[str, tuple[int, int]] = {}  # name -> (window index, admitted)
        self._peaks: dict[str, int] = {}

    def admit(self, windows: Sequence[RateWindow], *, enforce: bool = True) -> Refusal | None:
        """None admits the call (counted in every window); else the first full window.
        Without `enforce` every call is admitted and counted (peaks show the rate reached)."""
        now = self._clock()
        with self._lock:
            counts = [self._count(window, now) for window in windows]
            for window, (_, admitted) in zip(windows, counts, strict=True):
                if enforce and admitted >= window.limit:
                    ends = (math.floor(now / window.seconds) + 1) * window.seconds
                    return Refusal(window, max(1, math.ceil(ends - now)))
            for window, (index, admitted) in zip(windows, counts, strict=True):
                self._current[window.name] = (index, admitted + 1)
                self._peaks[window.name] = max(self._peaks.get(window.name, 0), admitted + 1)
        return None

    def _count(self, window: RateWindow, now: float) -> tuple[int, int]:
        index = math.floor(now / window.seconds)
        current, admitted = self._current.get(window.name, (index, 0))
        return index, admitted if current == index else 0

    def peaks(self) -> dict[str, int]:
        """The most calls any one window of each bucket admitted."""
        with self._lock:
            return dict(self._peaks)

    def clear(self) -> None:
        with self._lock:
            self._current.clear()
            self._peaks.clear()
