"""The state of one rate bucket as all replicas share it, and the rules on it.

Pure: no I/O and no clock of its own (`now` is passed in), so the rules can be
tested and reasoned about apart from NATS. `BucketLog` is the value of one KV
entry: the stamps (epoch seconds) of the calls reserved recently, oldest first
and never decreasing, the time until which a 429 paused the bucket, and, once
the provider's answers have told it, where its fixed windows begin (`Edge`).
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import orjson

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
# By default, how far the provider's clock may be from the replicas' where its windows are
# taken to begin at whole multiples of their length (`RateWindow.clock_aligned`): both kept
# by NTP. A deployment states its own (`DispatcherSettings.budget_provider_skew_s`), at most
# MAX_PROVIDER_SKEW_S: an edge known within the skew either way must be narrower than half
# a 1-second window (2 x 0.2 < 0.5).
DEFAULT_PROVIDER_SKEW_S = 0.05
MAX_PROVIDER_SKEW_S = 0.2
# How long such windows are counted whatever their alignment after a 429 (which a count
# by the clock should never meet): the assumption is tried again after this.
REALIGN_AFTER_S = 3600.0


@dataclass(frozen=True)
class Edge:
    """Where the provider's fixed windows of `seconds` begin, as its answers said
    (see `observed_edge`): one begins at some instant in [lo, hi] (epoch seconds on
    the replicas' clocks), and another every `seconds` before and after it."""

    lo: float
    hi: float
    seconds: float

    def __post_init__(self) -> None:
        if not (self.seconds > 0 and 0 <= self.hi - self.lo < self.seconds / 2):
            raise ValueError(f"not a usable window edge: {self}")

    def narrowed(self, other: Edge) -> Edge | None:
        """The instants both edges allow (`other` moved by whole windows next to this
        one); None when they allow none: the provider's windows are not fixed as
        both said, and neither is to be trusted. An edge of windows of another length
        says nothing of these: `other` as it is."""
        if other.seconds != self.seconds:
            return other
        shift = round((self.lo - other.lo) / self.seconds) * self.seconds
        lo, hi = max(self.lo, other.lo + shift), min(self.hi, other.hi + shift)
        return Edge(lo, hi, self.seconds) if lo <= hi else None

    def windows(self, first: float, last: float) -> range:
        """The windows (numbered from the edge) a call reaching the provider at some
        instant in [first, last] may fall in. Window k begins at o + k * seconds for
        the edge's true instant o in [lo, hi]: an arrival t is in it when
        t - (k + 1) * seconds < o <= t - k * seconds."""
        return range(
            math.floor((first - self.hi) / self.seconds),
            math.floor((last - self.lo) / self.seconds) + 1,
        )


@functools.cache
def clock_edge(seconds: float, provider_skew_s: float = DEFAULT_PROVIDER_SKEW_S) -> Edge:
    """The edge of windows of `seconds` that begin at whole multiples of it on the
    provider's clock, within `provider_skew_s` of ours."""
    return Edge(-provider_skew_s, provider_skew_s, seconds)


def observed_edge(
    sent: float, answered: float, reset_s: float, seconds: float, skew_s: float
) -> Edge | None:
    """The edge an answer's `RateLimit-Reset` tells: the provider said, at some instant
    between the request leaving (`sent`, a stamp, less the tie) and its answer coming
    back (`answered`), that its current window of `seconds` ends in `reset_s` whole
    seconds, give or take one either way (rounded up or down, and "approximate"),
    every replica's clock within `skew_s` of this one. None when that leaves too wide
    a range to be of use."""
    if not (math.isfinite(reset_s) and 0 <= reset_s <= seconds):
        return None
    lo = sent - _TIE_S + reset_s - 1.0 - skew_s
    hi = answered + reset_s + 1.0 + skew_s
    return Edge(lo, hi, seconds) if hi - lo < seconds / 2 else None


@dataclass(frozen=True)
class BucketLog:
    stamps: tuple[float, ...] = ()
    # Per stamp, how long after it the call reached the provider at the latest: None while
    # it is in flight (the margin, then), less once its answer came (`answered`).
    reached: tuple[float | None, ...] | None = None
    paused_until: float = 0.0
    # Where the provider's fixed windows of one length begin, once an answer said so:
    # the window of that length is then counted as the provider counts it (`_fits_fixed`).
    edge: Edge | None = None
    # From when its clock-aligned windows (`RateWindow.clock_aligned`) are counted so
    # (`clock_edge`): a 429 puts it REALIGN_AFTER_S after its pause (`paused`).
    aligned_from: float = 0.0

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
        data = orjson.loads(raw)
        stamps = tuple(data.get("t", ()))
        reached = data.get("r")
        edge = Edge(*data["e"]) if data.get("e") else None
        paused_until, aligned_from = float(data.get("p", 0.0)), float(data.get("a", 0.0))
        return cls(stamps, tuple(reached) if reached else None, paused_until, edge, aligned_from)

    def encode(self) -> bytes:
        entry: dict[str, object] = {"t": self.stamps, "p": self.paused_until}
        if any(r is not None for r in self._reached):
            entry["r"] = self._reached
        if self.edge is not None:
            entry["e"] = (self.edge.lo, self.edge.hi, self.edge.seconds)
        if self.aligned_from:
            entry["a"] = self.aligned_from
        # orjson: a bucket's entry holds a minute's stamps (750 for a consent
        # endpoint), written on every reservation; the standard json took a
        # few percent of the dispatcher's CPU during a full sync.
        return orjson.dumps(entry)

    @property
    def last(self) -> float:
        return self.stamps[-1] if self.stamps else float("-inf")

    def next_stamp(self, now: float) -> float:
        """The stamp a call reserved now gets: stamps only grow (see the package), and
        each is another's by a hair at least, so that an answer names its own call."""
        return max(now, math.nextafter(self.last, math.inf)) if self.stamps else now

    def wait(
        self,
        now: float,
        limits: Sequence[Capacity],
        margin_s: float,
        provider_skew_s: float = DEFAULT_PROVIDER_SKEW_S,
    ) -> float:
        """Seconds until one more call fits every window (0: now) and no pause holds.
        `provider_skew_s`: how far the provider's clock may be from ours (`clock_edge`)."""
        stamp = self.next_stamp(now)
        fits = max(self.paused_until, self.last - _TIE_S)
        for capacity in limits:
            fits = max(fits, self._fits_from(stamp, capacity, margin_s, provider_skew_s))
        return max(0.0, fits - now)

    def _fits_from(
        self, stamp: float, capacity: Capacity, margin_s: float, provider_skew_s: float
    ) -> float:
        """From when a call stamped `stamp` (or later) fits this window: as the provider
        counts it when its edge is known (`_fits_fixed`: told by its answers, or by the
        clock for a clock-aligned window no 429 has refuted lately), else whatever its
        alignment."""
        window = capacity.window
        if window.clock_aligned and stamp >= self.aligned_from:
            on_the_clock = clock_edge(window.seconds, provider_skew_s)
            return self._fits_fixed(stamp, capacity, margin_s, on_the_clock)
        edge = self.edge
        if edge is not None and edge.seconds == window.seconds:
            return self._fits_fixed(stamp, capacity, margin_s, edge)
        return self._fits_sliding(stamp, capacity, margin_s)

    def _fits_sliding(self, stamp: float, capacity: Capacity, margin_s: float) -> float:
        """Once fewer than `capacity.calls` calls may have reached the provider after
        the stamp - W. A call stamped s counts until s + its `reached` (the margin while
        it is unanswered)."""
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

    def _fits_fixed(self, stamp: float, capacity: Capacity, margin_s: float, edge: Edge) -> float:
        """From when a call stamped `stamp` (or later) fits the provider's fixed windows:
        each window it may fall in (`Edge.windows` of its arrival, from the tie before
        the stamp to the margin after) holds fewer than `capacity.calls` calls that may
        fall in it too; else it waits until it can no longer fall in the last full one.
        A call on the window's edge counts in both windows it may fall in."""
        arrivals = [(s - _TIE_S, latest) for s, latest in self._latest_arrivals(margin_s)]
        at = stamp
        # Every call of the log may arrive by `stamp` + the margin at the latest, so every
        # full window is among those of the first turn; once past the last of them, a
        # second turn finds none full (a later stamp only leaves windows behind). A third
        # is for floating-point rounding's sake; past it, a whole window later is surely
        # late enough to look again (the caller checks again once that wait is over).
        for _ in range(3):
            full = [
                k
                for k in edge.windows(at - _TIE_S, at + margin_s)
                if _may_fall_in(arrivals, edge, k) >= capacity.calls
            ]
            if not full:
                return -math.inf if at == stamp else at
            at = max(at, edge.hi + (max(full) + 1) * edge.seconds + _TIE_S + _ROUNDING_S)
        return at + edge.seconds

    def _latest_arrivals(self, margin_s: float) -> list[tuple[float, float]]:
        """(stamp, the latest its call may reach the provider) of every call in the log:
        the stamp plus what `reached` says, or the margin while it is unanswered."""
        return [
            (s, s + (margin_s if r is None else min(r, margin_s)))
            for s, r in zip(self.stamps, self._reached, strict=True)
        ]

    def call_wait(
        self,
        now: float,
        limits: Sequence[Capacity],
        margin_s: float,
        *,
        paced: bool,
        provider_skew_s: float = DEFAULT_PROVIDER_SKEW_S,
    ) -> float:
        """`wait`, and with `paced` (a call carrying less than it could) the steady
        pace too."""
        wait = self.wait(now, limits, margin_s, provider_skew_s)
        return max(wait, self.paced_wait(now, limits)) if paced else wait

    def paced_wait(self, now: float, limits: Sequence[Capacity]) -> float:
        """Seconds until the next call keeps the steady pace of the tightest
        window (one call per seconds / calls after the newest stamp)."""
        spacing = max(c.window.seconds / c.calls for c in limits)
        return max(0.0, self.last + spacing - now)

    def with_call(self, stamp: float, horizon_s: float) -> BucketLog:
        """This log with a call in flight at `stamp`, forgetting stamps no window can see."""
        keep = bisect.bisect_right(self.stamps, stamp - horizon_s)
        return replace(
            self, stamps=(*self.stamps[keep:], stamp), reached=(*self._reached[keep:], None)
        )

    def without(self, stamp: float) -> BucketLog:
        """This log without the call stamped `stamp` (a reservation not used)."""
        at = self._index(stamp)
        if at is None:
            return self
        return replace(
            self,
            stamps=(*self.stamps[:at], *self.stamps[at + 1 :]),
            reached=(*self._reached[:at], *self._reached[at + 1 :]),
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
        return replace(self, reached=tuple(changed))

    def holds(self, stamp: float) -> bool:
        return self._index(stamp) is not None

    def reached_of(self, stamp: float) -> float | None:
        """What the log holds of the call stamped `stamp` (None: in flight, or not held)."""
        at = self._index(stamp)
        return None if at is None else self._reached[at]

    def paused(self, until: float) -> BucketLog:
        """Paused until `until` by a 429. The edge is forgotten, and the clock's edges
        are not trusted for REALIGN_AFTER_S more: the provider refused a call its windows
        as we knew them allowed (other clients of the account may have spent them, or
        its windows are not where we took them to be), so the windows are counted
        whatever their alignment until an answer tells the edge again (the clock's:
        until that time is over)."""
        return replace(
            self,
            paused_until=max(self.paused_until, until),
            edge=None,
            aligned_from=max(self.aligned_from, until + REALIGN_AFTER_S),
        )

    def with_edge_as(self, edge: Edge | None) -> BucketLog:
        """This log with exactly `edge` (None: counted sliding)."""
        return self if self.edge == edge else replace(self, edge=edge)

    def with_edge(self, seen: Edge) -> BucketLog:
        """This log with the edge an answer told (`observed_edge`), narrowed by the one
        it holds; with none when the two disagree (the sliding count is safe whatever
        the alignment)."""
        return self.with_edge_as(seen if self.edge is None else self.edge.narrowed(seen))

    def _index(self, stamp: float) -> int | None:
        at = bisect.bisect_left(self.stamps, stamp)
        return at if at < len(self.stamps) and self.stamps[at] == stamp else None


def _may_fall_in(arrivals: Sequence[tuple[float, float]], edge: Edge, k: int) -> int:
    """How many of the calls, each reaching the provider at some instant from its first
    to its last (both included), may fall in window k of `edge`."""
    begins_lo = edge.lo + k * edge.seconds
    ends_hi = edge.hi + (k + 1) * edge.seconds
    return sum(1 for first, last in arrivals if last >= begins_lo and first < ends_hi)


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
