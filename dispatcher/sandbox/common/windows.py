"""Fixed rate windows aligned to the epoch (a 1-s window is one epoch second, a 60-s one an
epoch minute), counted per account and named bucket, with the most calls any one window of a
bucket admitted (its peak)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Windows of a bucket whose counts are kept: a call is drawn at most a moment after it
# arrived (seconds, when the server is busiest), so the window it arrived in is among
# the newest few.
KEPT_WINDOWS = 4


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
    at: float  # the instant it was counted at: when it arrived


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
        # (account, bucket, seconds) -> {window index: admitted in it}, the newest
        # KEPT_WINDOWS windows: a call is counted in the window it arrived in, which may
        # be an earlier one than a call drawn before it arrived in (see `draw`).
        self._counts: dict[tuple[str, str, int], dict[int, int]] = {}
        self._peaks: dict[RateWindow, int] = {}

    def admit(
        self,
        windows: Sequence[RateWindow],
        *,
        account: str = "",
        enforce: bool = True,
        at: float | None = None,
    ) -> Refusal | None:
        """None admits the call (counted in every window); else the refusal."""
        drawn = self.draw(windows, account=account, enforce=enforce, at=at)
        return drawn if isinstance(drawn, Refusal) else None

    def draw(
        self,
        windows: Sequence[RateWindow],
        *,
        account: str = "",
        enforce: bool = True,
        at: float | None = None,
    ) -> Refusal | Drawn:
        """Count one call of `account` in every window, or refuse it (counted nowhere) when
        one is full. Admitted: each window's count with this call, and when.
        Without `enforce` every call is admitted and counted (peaks show the rate reached).

        `at` is when the call arrived (by default now): a provider counts a request when
        it comes in, and the server may draw it later, after work of its own (applying
        finished import jobs) or behind other threads. Counted at the drawing instead, a
        call that arrived in one second and was drawn in the next took a place of that
        next second, which the dispatcher's budget had given to others: a 429 the
        provider would not answer (README, figure 7)."""
        with self._lock:
            now = self._clock() if at is None else at
            counts = [self._count(account, window, now) for window in windows]
            full = [w for w, (_, n) in zip(windows, counts, strict=True) if n >= w.limit]
            if enforce and full:
                longest = max(full, key=lambda w: seconds_left(now, w.seconds))
                return Refusal(longest, seconds_left(now, longest.seconds))
            for window, (index, admitted) in zip(windows, counts, strict=True):
                self._counted(account, window, index, admitted + 1)
                self._peaks[window] = max(self._peaks.get(window, 0), admitted + 1)
        return Drawn(tuple(admitted + 1 for _, admitted in counts), now)

    def _count(self, account: str, window: RateWindow, now: float) -> tuple[int, int]:
        """The window a call at `now` counts in, and how many it has admitted: its own,
        if it is one of the KEPT_WINDOWS newest. One older is never counted in again
        (its count is gone): a call at such an instant (a clock stepped far back by the
        system, a call held for longer than the kept windows last) counts in the newest
        window seen, as a full one refuses it."""
        index = math.floor(now / window.seconds)
        counted = self._counts.get((account, window.name, window.seconds), {})
        if counted and index <= max(counted) - KEPT_WINDOWS:
            index = max(counted)
        return index, counted.get(index, 0)

    def _counted(self, account: str, window: RateWindow, index: int, admitted: int) -> None:
        counted = self._counts.setdefault((account, window.name, window.seconds), {})
        counted[index] = admitted
        for old in sorted(counted)[:-KEPT_WINDOWS]:
            del counted[old]

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
            self._counts.clear()
            self._peaks.clear()
