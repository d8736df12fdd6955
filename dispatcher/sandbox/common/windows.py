"""Fixed rate windows aligned to the epoch (a 1-s window is one epoch second, a 60-s one an
epoch minute), counted per account and named bucket, with the most calls any one window of a
bucket admitted (its peak)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RateWindow:
    """At most `limit` admitted calls per `seconds`-long window of the bucket `name`."""

    name: str
    limit: int
    seconds: int


@dataclass(frozen=True)
class Refusal:
    window: RateWindow  # of the full windows, the one that ends last
    retry_after: int  # whole seconds until that window ends (at least 1)


@dataclass(frozen=True)
class Drawn:
    counts: tuple[int, ...]  # each window's count with this call, in the order given
    at: float  # the clock it was counted at (read under the counter's lock)


def seconds_left(now: float, seconds: int) -> int:
    """Whole seconds until the `seconds`-long epoch window holding `now` ends (at least 1)."""
    ends = (math.floor(now / seconds) + 1) * seconds
    return max(1, math.ceil(ends - now))


class WindowCounter:
    """`windows` are those the report lists even before any call drew from them."""

    def __init__(self, clock: Callable[[], float], windows: Iterable[RateWindow] = ()) -> None:
        self._clock = clock
        self._known = tuple(windows)
        self._lock = threading.Lock()
        # (account, bucket, seconds) -> (window index, admitted in it)
        self._current: dict[tuple[str, str, int], tuple[int, int]] = {}
        self._peaks: dict[RateWindow, int] = {}

    def admit(
        self, windows: Sequence[RateWindow], *, account: str = "", enforce: bool = True
    ) -> Refusal | None:
        """None admits the call (counted in every window); else the refusal."""
        drawn = self.draw(windows, account=account, enforce=enforce)
        return drawn if isinstance(drawn, Refusal) else None

    def draw(
        self, windows: Sequence[RateWindow], *, account: str = "", enforce: bool = True
    ) -> Refusal | Drawn:
        """Count one call of `account` in every window, or refuse it (counted nowhere) when
        one is full. Admitted: each window's count with this call, and when.
        Without `enforce` every call is admitted and counted (peaks show the rate reached)."""
        # The clock is read under the lock: the server's threads draw side by side, and a
        # call that read it before an edge but drew after a call of the next window would
        # set that window's count back to its own (the next window then admitting anew).
        with self._lock:
            now = self._clock()
            counts = [self._count(account, window, now) for window in windows]
            full = [w for w, (_, n) in zip(windows, counts, strict=True) if n >= w.limit]
            if enforce and full:
                longest = max(full, key=lambda w: seconds_left(now, w.seconds))
                return Refusal(longest, seconds_left(now, longest.seconds))
            for window, (index, admitted) in zip(windows, counts, strict=True):
                self._current[(account, window.name, window.seconds)] = (index, admitted + 1)
                self._peaks[window] = max(self._peaks.get(window, 0), admitted + 1)
        return Drawn(tuple(admitted + 1 for _, admitted in counts), now)

    def _count(self, account: str, window: RateWindow, now: float) -> tuple[int, int]:
        """The window a call at `now` counts in, and how many it has admitted. A window
        is never set back: should the clock go back (a step of the system's), the call
        counts in the newest window seen, as a full one refuses it."""
        index = math.floor(now / window.seconds)
        key = (account, window.name, window.seconds)
        current, admitted = self._current.get(key, (index, 0))
        return (current, admitted) if index <= current else (index, 0)

    def peaks(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per bucket, per window length in seconds ("1", "60"): its limit and the most calls
        one account had admitted in one window of it (`peak`)."""
        with self._lock:
            peaks = dict(self._peaks)
        report: dict[str, dict[str, dict[str, Any]]] = {}
        for window in (*self._known, *(w for w in peaks if w not in self._known)):
            report.setdefault(window.name, {})[str(window.seconds)] = {
                "limit": window.limit,
                "peak": peaks.get(window, 0),
            }
        return report

    def forget_peaks(self) -> None:
        """A fresh report; the live windows stay (they are the account's state)."""
        with self._lock:
            self._peaks.clear()

    def clear(self) -> None:
        with self._lock:
            self._current.clear()
            self._peaks.clear()
