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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dispatcher.providers.base import RateBucket, RateWindow

# The part of a window's calls that only compliance work may take, in a bucket
# that compliance and other work share: bulk work stops short of it.
COMPLIANCE_SHARE = 0.15
# Added to a wait so that floating-point rounding does not wake a call a hair
# before the stamp it waits for has left the window (it would wait again).
_ROUNDING_S = 1e-6
# Calls reserved at one instant get stamps of their own a hair apart (see `next_stamp`),
# which may put a stamp up to this far ahead of the clock without a wait for it.
_TIE_S = 1e-5


@dataclass(frozen=True)
class BucketLog:
    stamps: tuple[float, ...] = ()
    # Per stamp, how long after it the call reached the provider at the latest: None while
    # it is in flight (the margin, then), less once its answer came (`answered`).
    reached: tuple[float | None, ...] | None = None
    paused_until: float = 0.0

    def __post_init__(self) -> None:
        if self.reached is None:
            object.__setattr__(self, "reached", (None,) * len(self.stamps))
        elif len(self.reached) != len(self.stamps):
            raise ValueError("a log needs one `reached` per stamp")

    @property
    def _reached(self) -> tuple[float | None, ...]:
        assert self.reached is not None  # filled in by __post_init__
        return self.reached

    @classmethod
    def decode(cls, raw: bytes | None) -> BucketLog:
        if not raw:
            return cls()
        data = json.loads(raw)
        stamps = tuple(data.get("t", ()))
        reached = data.get("r")
        return cls(stamps, tuple(reached) if reached else None, float(data.get("p", 0.0)))

    def encode(self) -> bytes:
        entry: dict[str, object] = {"t": self.stamps, "p": self.paused_until}
        if any(r is not None for r in self._reached):
            entry["r"] = self._reached
        return json.dumps(entry, separators=(",", ":")).encode()

    @property
    def last(self) -> float:
        return self.stamps[-1] if self.stamps else float("-inf")

    def next_stamp(self, now: float) -> float:
        """The stamp a call reserved now gets: stamps only grow (see the package), and
        each is another's by a hair at least, so that an answer names its own call."""
        return max(now, math.nextafter(self.last, math.inf)) if self.stamps else now

    def wait(self, now: float, limits: Sequence[Capacity], margin_s: float) -> float:
        """Seconds until one more call fits every window (0: now) and no pause holds."""
        stamp = self.next_stamp(now)
        fits = max(self.paused_until, self.last - _TIE_S)
        for capacity in limits:
            fits = max(fits, self._fits_from(stamp, capacity, margin_s))
        return max(0.0, fits - now)

    def _fits_from(self, stamp: float, capacity: Capacity, margin_s: float) -> float:
        """From when a call stamped `stamp` (or later) fits this window: once fewer than
        `capacity.calls` calls may have reached the provider after its stamp - W. A call
        stamped s counts until s + its `reached` (the margin while it is unanswered)."""
        # A request may leave up to _TIE_S before its stamp: so much longer a window.
        window = capacity.window.seconds + _TIE_S
        first = bisect.bisect_right(self.stamps, stamp - window - margin_s)
        cutoff = stamp - window
        latest = [
            s + (margin_s if r is None else min(r, margin_s))
            for s, r in zip(self.stamps[first:], self._reached[first:], strict=True)
        ]
        counted = sorted(t for t in latest if t > cutoff)
        excess = len(counted) - capacity.calls + 1
        if excess <= 0:
            return -math.inf  # room now
        return counted[excess - 1] + window + _ROUNDING_S

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
        """This log with a call in flight at `stamp`, forgetting stamps no window can see."""
        keep = bisect.bisect_right(self.stamps, stamp - horizon_s)
        return BucketLog(
            (*self.stamps[keep:], stamp), (*self._reached[keep:], None), self.paused_until
        )

    def without(self, stamp: float) -> BucketLog:
        """This log without the call stamped `stamp` (a reservation not used)."""
        at = self._index(stamp)
        if at is None:
            return self
        return BucketLog(
            (*self.stamps[:at], *self.stamps[at + 1 :]),
            (*self._reached[:at], *self._reached[at + 1 :]),
            self.paused_until,
        )

    def answered(self, answers: Mapping[float, float]) -> BucketLog:
        """This log with each call stamped `stamp` in `answers` known to have reached the
        provider within `answers[stamp]` seconds of its stamp (its answer came back by
        then). Stamps it does not hold are passed over."""
        changed = list(self._reached)
        for stamp, reached in answers.items():
            at = self._index(stamp)
            if at is not None:
                changed[at] = reached
        if changed == list(self._reached):
            return self
        return BucketLog(self.stamps, tuple(changed), self.paused_until)

    def holds(self, stamp: float) -> bool:
        return self._index(stamp) is not None

    def reached_of(self, stamp: float) -> float | None:
        """What the log holds of the call stamped `stamp` (None: in flight, or not held)."""
        at = self._index(stamp)
        return None if at is None else self._reached[at]

    def paused(self, until: float) -> BucketLog:
        return BucketLog(self.stamps, self.reached, max(self.paused_until, until))

    def _index(self, stamp: float) -> int | None:
        at = bisect.bisect_left(self.stamps, stamp)
        return at if at < len(self.stamps) and self.stamps[at] == stamp else None


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
    """How far back a stamp can still count: the longest window, the margin and the tie."""
    return max(window.seconds for window in bucket.windows) + margin_s + _TIE_S
