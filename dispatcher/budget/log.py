"""The state of one rate bucket as all replicas share it, and the rules on it.

Pure: no I/O and no clock of its own (`now` is passed in), so the rules can be
tested and reasoned about apart from NATS. `BucketLog` is the value of one KV
entry: the stamps (epoch seconds) of the calls reserved recently, oldest first
and never decreasing, and the time until which a 429 paused the bucket.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from dispatcher.providers.base import RateBucket, RateWindow

# The part of a window's calls that only compliance work may take, in a bucket
# that compliance and other work share: bulk work stops short of it.
COMPLIANCE_SHARE = 0.15
# Added to a wait so that floating-point rounding does not wake a call a hair
# before the stamp it waits for has left the window (it would wait again).
_ROUNDING_S = 1e-6


@dataclass(frozen=True)
class BucketLog:
    stamps: tuple[float, ...] = ()
    paused_until: float = 0.0

    @classmethod
    def decode(cls, raw: bytes | None) -> BucketLog:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(tuple(data.get("t", ())), float(data.get("p", 0.0)))

    def encode(self) -> bytes:
        return json.dumps(
            {"t": self.stamps, "p": self.paused_until}, separators=(",", ":")
        ).encode()

    @property
    def last(self) -> float:
        return self.stamps[-1] if self.stamps else float("-inf")

    def next_stamp(self, now: float) -> float:
        """The stamp a call reserved now gets: stamps never go back, so a replica
        whose clock is behind another's stamps at the newest one (see the package)."""
        return max(now, self.last)

    def wait(self, now: float, limits: Sequence[Capacity], margin_s: float) -> float:
        """Seconds until one more call fits every window (0: now) and no pause holds."""
        stamp = self.next_stamp(now)
        wait = max(0.0, self.paused_until - now, stamp - now)
        for capacity in limits:
            wait = max(wait, self._window_wait(stamp, capacity, margin_s) + stamp - now)
        return wait

    def _window_wait(self, stamp: float, capacity: Capacity, margin_s: float) -> float:
        """A call stamped `stamp` fits when fewer than `capacity.calls` stamps lie in
        (stamp - span, stamp]; else it waits until enough of the oldest have left."""
        span = capacity.window.seconds + margin_s
        first = bisect.bisect_right(self.stamps, stamp - span)
        excess = len(self.stamps) - first - capacity.calls + 1
        if excess <= 0:
            return 0.0
        leaving = self.stamps[first + excess - 1]  # leaves the span at leaving + span
        return max(0.0, leaving + span - stamp + _ROUNDING_S)

    def call_wait(
        self, now: float, limits: Sequence[Capacity], margin_s: float, *, paced: bool
    ) -> float:
        """`wait`, and with `paced` (a call carrying less than it could) the steady
        pace too."""
        wait = self.wait(now, limits, margin_s)
        return max(wait, self.paced_wait(now, limits)) if paced else wait

    def paced_wait(self, now: float, limits: Sequence[Capacity]) -> float:
        """Seconds until the next call keeps the steady pace of the tightest
        window (one call per seconds / calls after the newest stamp)."""
        spacing = max(c.window.seconds / c.calls for c in limits)
        return max(0.0, self.last + spacing - now)

    def with_call(self, stamp: float, horizon_s: float) -> BucketLog:
        """This log with a call at `stamp`, forgetting stamps no window can see."""
        keep = bisect.bisect_right(self.stamps, stamp - horizon_s)
        return BucketLog((*self.stamps[keep:], stamp), self.paused_until)

    def without(self, stamp: float) -> BucketLog:
        """This log without one call stamped `stamp` (a reservation not used)."""
        at = bisect.bisect_left(self.stamps, stamp)
        if at < len(self.stamps) and self.stamps[at] == stamp:
            return BucketLog((*self.stamps[:at], *self.stamps[at + 1 :]), self.paused_until)
        return self

    def paused(self, until: float) -> BucketLog:
        return BucketLog(self.stamps, max(self.paused_until, until))


@dataclass(frozen=True)
class Capacity:
    """How many calls of one window a kind of work may take."""

    window: RateWindow
    calls: int


def capacities(bucket: RateBucket, *, compliance: bool, shared: bool) -> tuple[Capacity, ...]:
    """Each window's calls open to this work: all of them for compliance work or
    in a bucket no compliance work uses; for other work in a shared bucket, all
    but the compliance share (at least one call each is left to either)."""
    return tuple(
        Capacity(window, window.calls if compliance or not shared else _open_calls(window))
        for window in bucket.windows
    )


def _open_calls(window: RateWindow) -> int:
    reserved = min(window.calls - 1, max(1, math.ceil(window.calls * COMPLIANCE_SHARE)))
    return window.calls - reserved


def horizon_s(bucket: RateBucket, margin_s: float) -> float:
    """How far back a stamp can still count: the longest window and the margin."""
    return max(window.seconds for window in bucket.windows) + margin_s
