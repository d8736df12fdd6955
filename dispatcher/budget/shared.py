"""The provider budget of one account, shared by every replica through NATS KV.

One KV entry per rate bucket (key `<account>.<bucket>`) holds its `BucketLog`.
A call is reserved in each of its operation's buckets by compare-and-set on the
entry's revision, once all of them have room (no stamp is held while another bucket
is waited for); the last entry seen of each bucket is cached, so a replica
that was the last to write a bucket reserves with one KV round trip (`update`
on the cached revision), and with three (`update` refused, `get`, `update`)
when another replica wrote it meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import nats.errors
from marketing_runtime.clock import Sleep
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from dispatcher import metrics
from dispatcher.budget.log import (
    DEFAULT_PROVIDER_SKEW_S,
    REALIGN_AFTER_S,
    BucketLog,
    Capacity,
    Edge,
    capacities,
    horizon_s,
    observed_edge,
)
from dispatcher.providers.base import Limits, RateBucket, WindowReport

log = logging.getLogger(__name__)
# How far a call's arrival at the provider may lag behind its stamp, at most,
# half of it between the stamp and the request leaving (checked: `fresh`) and
# half on the way (assumed), clock differences between replicas included.
DEFAULT_MARGIN_S = 0.1
# Once a call is answered it reached the provider by then, on this replica's clock: it
# counts until its answer and this much more, for the clocks of replicas may differ.
DEFAULT_SKEW_S = 0.01
# Answers kept per bucket until a write of this replica holds them: more than any
# window of the providers' takes.
_ANSWERS_KEPT = 2000
_KEY_UNSAFE = re.compile(r"[^-_=a-zA-Z0-9]")


def account_id(provider: str, base_url: str, credential: str) -> str:
    """A name for the provider account that says nothing of its key: the budget is
    per account, and keys of one account (or one key used twice) must share it."""
    key_digest = hashlib.sha256(credential.encode()).hexdigest()
    text = f"{provider}\n{base_url.rstrip('/')}\n{key_digest}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class _Plan:
    """One bucket as one operation draws from it."""

    key: str
    bucket: RateBucket
    limits: tuple[Capacity, ...]


@dataclass(frozen=True)
class _PendingEdge:
    """What this replica's answers said of a bucket's edge (None: drop it), and when."""

    edge: Edge | None
    learnt_at: float


@dataclass(frozen=True)
class Stamp:
    at: float


@dataclass(frozen=True)
class Reservation:
    """Calls reserved for one request: (KV key, stamp) per bucket, and how they were
    taken (for `restamped`): each bucket's plan, and whether at the steady pace. Once
    an exchange stopped midway it holds stamps of some of its buckets only: never
    fresh then (see `SharedBudget.fresh`)."""

    operation: str
    stamps: tuple[tuple[str, float], ...]
    plans: tuple[_Plan, ...] = field(default=(), compare=False, repr=False)
    paced: bool = field(default=False, compare=False, repr=False)

    @property
    def whole(self) -> bool:
        """Whether it holds a stamp in each bucket it was taken in (one taken otherwise
        than by `acquire`, with no plans, as it is)."""
        return not self.plans or {key for key, _ in self.stamps} == {p.key for p in self.plans}


class SharedBudget:
    def __init__(
        self,
        kv: KeyValue,
        account: str,
        limits: Limits,
        *,
        margin_s: float = DEFAULT_MARGIN_S,
        skew_s: float = DEFAULT_SKEW_S,
        provider_skew_s: float = DEFAULT_PROVIDER_SKEW_S,
        epoch: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`skew_s`: how far the replicas' clocks may differ; `provider_skew_s`: how far
        the provider's may be from theirs, where its windows are counted by the clock
        (`log.clock_edge`)."""
        self._kv, self._margin_s, self._skew_s = kv, margin_s, skew_s
        self._provider_skew_s = provider_skew_s
        self._epoch, self._sleep = epoch, sleep
        self._account, self._limits = _key_safe(account), limits
        self._plans = _plans(self._account, limits, bulk=False)
        self._bulk_plans = _plans(self._account, limits, bulk=True)
        self._request_plans: dict[tuple[str, str, bool], _Plan] = {}
        self._seen: dict[str, tuple[BucketLog, int | None]] = {}
        # Per bucket, the answers of this replica's calls (stamp -> reached) that the
        # entry may not hold yet: they go into every write (see `answered`).
        self._answers: defaultdict[str, dict[float, float]] = defaultdict(dict)
        # Per bucket, what this replica's answers (or a 429) said of the window edge that
        # the entry may not hold yet: it goes into every write until one holds it (`told`).
        self._edges: dict[str, _PendingEdge] = {}
        self._deciding: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def covers(self, operation: str) -> bool:
        """Whether a call of `operation` is reserved before it goes (`acquire`); not so
        when the provider paces the operation's requests (`acquire_request`)."""
        return operation in self._plans and operation not in self._limits.paces_requests

    async def acquire(
        self, operation: str, *, paced: bool = False, bulk: bool = False
    ) -> Reservation:
        """A call of `operation` in each of its buckets, once they all have room;
        `paced` ones (a batch that is not full) also keep each bucket's steady pace.
        `bulk`: the call is bulk work even if its operation is a compliance one
        (a full sync's consent calls), so it stops short of the compliance share."""
        plans = self._bulk_plans if bulk else self._plans
        return await self._acquire(operation, plans.get(operation, ()), paced)

    async def acquire_request(
        self, operation: str, buckets: Sequence[RateBucket], *, bulk: bool = False
    ) -> Reservation:
        """One HTTP request of `operation` in each of `buckets` (those that request draws
        from, as the provider says), once they all have room; `bulk` as in `acquire`."""
        plans = tuple(self._request_plan(operation, bucket, bulk) for bucket in buckets)
        return await self._acquire(operation, plans, False)

    async def _acquire(self, operation: str, plans: Sequence[_Plan], paced: bool) -> Reservation:
        """One call in each bucket, taken only once every bucket has room as last seen:
        a stamp held while another bucket is waited for would keep its call from others
        and go stale. Tightest bucket first: the one most likely to be found full by a
        round trip, so that few stamps are given back."""
        ordered = sorted(plans, key=_tightness)
        waited = 0.0
        while True:
            wait = max((self._wait(plan, paced) for plan in ordered), default=0.0)
            if wait <= 0:
                taken = await self._reserved_whole(operation, ordered, paced)
                if isinstance(taken, tuple):
                    _count(operation, ordered, waited)
                    return Reservation(operation, taken, tuple(ordered), paced)
                wait = taken
            waited += wait
            await self._sleep(wait)

    def _wait(self, plan: _Plan, paced: bool) -> float:
        """Seconds until `plan`'s bucket has room, by the entry as last seen."""
        return self._call_wait(self._cached(plan.key), self._epoch(), plan, paced)

    def _call_wait(self, state: BucketLog, now: float, plan: _Plan, paced: bool) -> float:
        return state.call_wait(
            now, plan.limits, self._margin_s, paced=paced, provider_skew_s=self._provider_skew_s
        )

    async def _reserved_whole(
        self, operation: str, plans: Sequence[_Plan], paced: bool
    ) -> tuple[tuple[str, float], ...] | float:
        """`_reserve_all`, whose round trips a cancel does not cut short: a stamp
        written (or a write the server applied but whose answer had not come) would
        otherwise stay in its bucket, counted, with no one to use it or give it back.
        Cancelled meanwhile, the caller goes at once; the round trips go on in their
        own task, and what they reserved is given back."""
        reserving = asyncio.ensure_future(self._reserve_all(operation, plans, paced))
        try:
            return await asyncio.shield(reserving)
        except asyncio.CancelledError:
            _UNDER_WAY.add(reserving)
            reserving.add_done_callback(partial(self._give_back_when_reserved, operation))
            raise

    def _give_back_when_reserved(
        self, operation: str, reserving: asyncio.Future[tuple[tuple[str, float], ...] | float]
    ) -> None:
        _UNDER_WAY.discard(reserving)
        if reserving.cancelled():
            return
        if (exc := reserving.exception()) is not None:  # what it took, it gave back
            log.warning("%s: a reservation called off failed (%r)", operation, exc)
            return
        taken = reserving.result()
        if isinstance(taken, tuple) and taken:
            metrics.BUDGET_GIVEN_BACK.labels(operation).inc()
            self.give_back(Reservation(operation, taken))

    async def _reserve_all(
        self, operation: str, plans: Sequence[_Plan], paced: bool
    ) -> tuple[tuple[str, float], ...] | float:
        """A stamp in each bucket; or, when a round trip shows one full after all
        (another replica took its room), the stamps taken are given back and the
        seconds to wait are returned. A round trip that fails gives back the stamps
        taken before it, then raises."""
        stamps: list[tuple[str, float]] = []
        try:
            for plan in plans:
                # One task of this replica at a time decides on a bucket, on the entry
                # as the last of them left it: tasks woken for one free call do not
                # all try to take it. Held for a round trip, never during a wait.
                async with self._deciding[plan.key]:
                    got = await self._try_reserve(plan, paced)
                if not isinstance(got, Stamp):
                    wait = got
                    break
                stamps.append((plan.key, got.at))
            else:
                return tuple(stamps)
        except Exception:
            await self._give_back_waited(Reservation(operation, tuple(stamps)))
            raise
        await self._give_back_waited(Reservation(operation, tuple(stamps)))
        return wait

    async def _give_back_waited(self, reservation: Reservation) -> None:
        """`give_back`, waited for: its failure is logged, not raised."""
        if reservation.stamps:
            await asyncio.wait({self.give_back(reservation)})

    def _request_plan(self, operation: str, bucket: RateBucket, bulk: bool) -> _Plan:
        """The bucket as a request of `operation` draws from it: the capacities are those
        `rates` give it (a bucket the provider did not declare is taken as shared with
        compliance work, so other work leaves compliance its share)."""
        cached = self._request_plans.get((operation, bucket.name, bulk))
        if cached is None:
            shared = _shared_buckets(self._limits)
            cached = _plan(self._account, bucket, operation, self._limits, shared, bulk=bulk)
            self._request_plans[operation, bucket.name, bulk] = cached
        return cached

    def fresh(self, reservation: Reservation) -> bool:
        """Whether the request may still go on this reservation: a stamp much older
        than the request would let the provider see it later than we counted it, and
        a reservation missing a bucket's stamp would let it go uncounted there."""
        return reservation.whole and self.stamp_age(reservation) <= self._margin_s / 2

    def stamp_age(self, reservation: Reservation) -> float:
        """Seconds since the oldest stamp of `reservation` (0 for one of no bucket)."""
        now = self._epoch()
        return now - min((stamp for _, stamp in reservation.stamps), default=now)

    async def restamped(self, reservation: Reservation) -> tuple[Reservation, bool]:
        """The stamps of a reservation whose request has sent no byte, exchanged where
        it is about to leave for stamps of now, bucket by bucket: each bucket without
        the old stamp must have room for the new one at once, at the steady pace if it
        was taken so. Room is never waited for, as the request holds a connection
        meanwhile, and the exchange gives up once half the margin has gone by (its own
        round trips, or a turn on a bucket behind this replica's other tasks): its
        first new stamp would be stale by then. Returns what is held then, and whether
        it is a whole new reservation. When a bucket has no room, the new stamps taken
        are given back (counted as unused; not waited for) and the old ones of the
        other buckets are still held, a reservation no longer whole: the request is
        called off, and reserved again outside httpx. A round trip that fails ends it
        the same way, logged. (Cancelled midway, the new stamps written count until
        their windows end: safe.)"""
        if not reservation.plans or not reservation.whole:
            return reservation, False
        held = dict(reservation.stamps)
        taken: list[tuple[str, float]] = []
        give_up_at = self._epoch() + self._margin_s / 2
        try:
            for plan in reservation.plans:
                async with self._deciding[plan.key]:
                    got = await self._try_reserve(
                        plan, reservation.paced, instead_of=held[plan.key], until=give_up_at
                    )
                if not isinstance(got, Stamp):
                    break
                del held[plan.key]
                taken.append((plan.key, got.at))
            else:
                return replace(reservation, stamps=tuple(taken)), True
        except (nats.errors.Error, OSError) as exc:
            log.warning("%s: cannot take a new stamp (%r)", reservation.operation, exc)
        if taken:  # in a task of its own: the request, holding its connection, goes on
            metrics.BUDGET_GIVEN_BACK.labels(reservation.operation).inc()
            self.give_back(Reservation(reservation.operation, tuple(taken)))
        return replace(reservation, stamps=tuple(held.items())), False

    async def release(self, reservation: Reservation) -> None:
        """Give back the calls of a reservation that was not used."""
        for key, stamp in reservation.stamps:
            await self._change(key, partial(BucketLog.without, stamp=stamp))

    def give_back(self, reservation: Reservation) -> asyncio.Future[None]:
        """`release`, in a task of its own that a cancel of its caller does not stop
        (a KV round trip a bucket), logged should it fail: the reservation then counts
        until its windows end, which is safe. The caller may wait for it."""
        releasing = asyncio.ensure_future(self.release(reservation))
        _UNDER_WAY.add(releasing)
        releasing.add_done_callback(partial(_logged_if_failed, reservation.operation))
        return releasing

    def answered(self, reservation: Reservation) -> None:
        """The request of `reservation` has its answer: it reached the provider by now,
        so it counts in each window until now (and the skew), not until its stamp and
        the margin. No round trip: the answer goes into this replica's next write of
        the bucket (a reservation), and meanwhile into its own view of it."""
        now = self._epoch()
        for key, stamp in reservation.stamps:
            # Rounded up to 0.1 ms (safe: it counts longer), which keeps the entry short.
            reached = min(
                math.ceil((max(0.0, now - stamp) + self._skew_s) * 1e4) / 1e4, self._margin_s
            )
            answers = self._answers[key]
            answers[stamp] = reached
            if len(answers) > _ANSWERS_KEPT:  # a bucket this replica has not written for long
                for old in sorted(answers)[: len(answers) - _ANSWERS_KEPT]:
                    del answers[old]
            state, revision = self._cached_entry(key)
            self._seen[key] = (state.answered({stamp: reached}), revision)

    def told(self, reservation: Reservation, report: WindowReport) -> None:
        """The answer to the request of `reservation` said where the provider's current
        window ends (`WindowReport`): from now on, and for every replica once this one
        next writes the bucket, that window is counted as the provider counts it
        (`log.Edge`). Only for a request of one bucket: the answer speaks of its own.
        Nothing is learnt while a 429 pauses the bucket, and an answer that disagrees
        with the edge this replica sees drops it: the windows are counted sliding until
        a later answer tells the edge anew. (Best effort, for another replica may write
        an edge meanwhile: under the provider's fixed windows, answers never disagree.)"""
        if len(reservation.stamps) != 1:
            return
        ((key, stamp),) = reservation.stamps
        now = self._epoch()
        state, revision = self._cached_entry(key)
        seen = observed_edge(stamp, now, report.reset_s, report.seconds, self._skew_s)
        if seen is None or state.paused_until > now:
            return
        edge = seen if state.edge is None else state.edge.narrowed(seen)
        self._edges[key] = _PendingEdge(edge, learnt_at=now)
        self._remember(key, state.with_edge_as(edge), revision)

    async def throttled(
        self, operation: str, retry_after_s: float, buckets: Sequence[RateBucket] = ()
    ) -> None:
        """The provider refused a request with 429: pause the buckets it stands for, for
        every replica: `buckets` when the request named them, else `_throttled_buckets`.
        The pause drops the bucket's edge (`BucketLog.paused`); should writing it fail,
        the drop stays pending for this replica's next write."""
        until = self._epoch() + retry_after_s
        plans = [self._request_plan(operation, bucket, False) for bucket in buckets]
        plans = plans or list(_throttled_buckets(operation, self._plans))
        for plan in plans:
            if any(window.clock_aligned for window in plan.bucket.windows):
                log.warning(
                    "429 from %s: its seconds are counted whatever their alignment for %.0f s"
                    " (not as the clock's)",
                    plan.bucket.name,
                    retry_after_s + REALIGN_AFTER_S,
                )
        for key in (plan.key for plan in plans):
            self._edges[key] = _PendingEdge(None, learnt_at=self._epoch())
            state, revision = self._cached_entry(key)
            self._remember(key, state.with_edge_as(None), revision)
            await self._change(key, lambda state: state.paused(until))

    def pause_left(self, operation: str, buckets: Sequence[RateBucket] = ()) -> float:
        """Seconds a 429 still pauses one of these buckets (default: every one this
        operation may draw from), as last seen (0: none)."""
        now = self._epoch()
        keys = [self._request_plan(operation, bucket, False).key for bucket in buckets]
        keys = keys or [plan.key for plan in self._plans.get(operation, ())]
        return max(0.0, *(self._cached(key).paused_until - now for key in keys))

    async def fill_wait(self, operation: str) -> float:
        """Seconds, as the buckets stand now (read afresh), until a call of
        `operation` could go at the steady pace: meanwhile a partly filled batch
        may as well take more work."""
        return await self._fresh_wait(operation, paced=True)

    async def room_wait(self, operation: str) -> float:
        """Seconds, as the buckets stand now (read afresh), until a call of
        `operation` would find room in each of them (0: now). Reserves nothing:
        a caller that cannot wait that long answers at once instead."""
        return await self._fresh_wait(operation, paced=False)

    async def _fresh_wait(self, operation: str, *, paced: bool) -> float:
        now, wait = self._epoch(), 0.0
        for plan in self._plans.get(operation, ()):
            state = await self._read(plan.key)
            wait = max(wait, self._call_wait(state, now, plan, paced))
        return wait

    async def _try_reserve(
        self,
        plan: _Plan,
        paced: bool,
        *,
        instead_of: float | None = None,
        until: float = math.inf,
    ) -> Stamp | float:
        """The call reserved (its stamp), or the seconds to wait before trying again.
        `instead_of`: a stamp of this replica's taken out in the same write, the room
        looked for in the bucket without it (`restamped`). `until`: when to stop trying
        (another replica's writes make each try a round trip more): the wait then is
        infinite."""
        while True:
            state, revision = self._cached_entry(plan.key)
            if instead_of is not None:
                state = state.without(instead_of)
            now = self._epoch()
            if now > until:
                return math.inf
            wait = self._call_wait(state, now, plan, paced)
            if wait > 0:
                return wait
            stamp = state.next_stamp(now)
            after = state.with_call(stamp, horizon_s(plan.bucket, self._margin_s))
            if await self._write(plan.key, after, revision):
                return Stamp(stamp)
            await self._read(plan.key)

    async def _change(self, key: str, change: Callable[[BucketLog], BucketLog]) -> None:
        """`change` written to the entry, by compare-and-set. A change that changes
        nothing in the entry as it is now (a stamp given back that it no longer holds)
        is not written: each write makes the other replicas' next one a conflict."""
        unchanged_then: int | None = None
        while True:
            state, revision = self._cached_entry(key)
            after = change(state)
            if after is state and revision is not None:
                if revision == unchanged_then:  # as read after this replica's own writes
                    return
                unchanged_then = revision
            elif await self._write(key, after, revision):
                return
            await self._read(key)

    def _remember(self, key: str, state: BucketLog, revision: int | None) -> None:
        """The entry as last seen (with this replica's answers), and whether its edge is known."""
        self._seen[key] = (state, revision)
        edge = state.edge
        width = -1.0 if edge is None else edge.hi - edge.lo
        metrics.BUDGET_EDGE.labels(key.partition(".")[2]).set(width)

    def _cached(self, key: str) -> BucketLog:
        return self._seen.get(key, (BucketLog(), None))[0]

    def _cached_entry(self, key: str) -> tuple[BucketLog, int | None]:
        return self._seen.get(key, (BucketLog(), None))

    async def _read(self, key: str) -> BucketLog:
        metrics.BUDGET_KV_OPS.labels("get").inc()
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            self._remember(key, BucketLog(), None)
        else:
            self._remember(
                key, self._with_answers(key, BucketLog.decode(entry.value)), entry.revision
            )
        return self._seen[key][0]

    def _with_answers(self, key: str, state: BucketLog) -> BucketLog:
        """`state` with this replica's answers (and the edge they told) that it does not
        hold yet."""
        answers = self._answers.get(key)
        if answers:
            state = state.answered(answers)
        return self._with_pending_edge(key, state)

    def _with_pending_edge(self, key: str, state: BucketLog) -> BucketLog:
        """`state`, as the entry holds it (read, or just written), with what this
        replica's answers said of its edge (`told`) and it does not hold yet. Done with
        once `state` holds it: the same edge or a narrower one, or none for a drop. An
        edge learnt before a 429 that paused the bucket since is dropped instead (its
        `paused_until` is later than when the edge was learnt)."""
        pending = self._edges.get(key)
        if pending is None:
            return state
        edge = pending.edge
        if edge is not None and state.paused_until > pending.learnt_at:
            edge = None
        merged = state.with_edge_as(None) if edge is None else state.with_edge(edge)
        if merged.edge == state.edge:
            del self._edges[key]
        elif merged.edge is None:  # the entry's edge and ours disagree: the drop is pending
            self._edges[key] = _PendingEdge(None, pending.learnt_at)
        return merged

    async def _write(self, key: str, state: BucketLog, revision: int | None) -> bool:
        """Compare-and-set: False when another replica wrote the entry since `revision`
        (None: the entry is taken to be new)."""
        metrics.BUDGET_KV_OPS.labels("update").inc()
        try:
            if revision is None:
                written = await self._kv.create(key, state.encode())
            else:
                written = await self._kv.update(key, state.encode(), last=revision)
        except KeyWrongLastSequenceError:
            metrics.BUDGET_KV_OPS.labels("conflict").inc()
            return False
        self._remember(key, self._after_write(key, state), written)
        return True

    def _after_write(self, key: str, written: BucketLog) -> BucketLog:
        """The answers (and the edge) `written` holds are shared now (any later write
        builds on it); those that came while it was on its way go into the next one."""
        answers = self._answers.get(key)
        if answers:
            # Held as answered, or gone from the log (out of every window, or given back).
            settled = [
                s for s, r in answers.items() if written.reached_of(s) == r or not written.holds(s)
            ]
            for stamp in settled:
                del answers[stamp]
        if answers:
            written = written.answered(answers)
        return self._with_pending_edge(key, written)


def _plans(account: str, limits: Limits, *, bulk: bool) -> dict[str, tuple[_Plan, ...]]:
    """Per operation, each bucket it draws from with the capacities open to it: to
    its calls as the operation's kind of work says, or, with `bulk`, as bulk work."""
    shared = _shared_buckets(limits)
    return {
        operation: tuple(
            _plan(account, bucket, operation, limits, shared, bulk=bulk) for bucket in buckets
        )
        for operation, buckets in limits.rates.items()
    }


def _shared_buckets(limits: Limits) -> frozenset[str]:
    """The buckets compliance work draws from. They are shared with bulk work: any call
    of another operation there is bulk work, and so may be any of its own (`bulk`)."""
    return frozenset(
        bucket.name
        for operation, buckets in limits.rates.items()
        if operation in limits.compliance
        for bucket in buckets
    )


def _plan(
    account: str,
    bucket: RateBucket,
    operation: str,
    limits: Limits,
    shared: frozenset[str],
    *,
    bulk: bool = False,
) -> _Plan:
    declared = any(bucket.name == b.name for bs in limits.rates.values() for b in bs)
    return _Plan(
        f"{account}.{_key_safe(bucket.name)}",
        bucket,
        capacities(
            bucket,
            compliance=operation in limits.compliance and not bulk,
            # A bucket the provider did not declare is taken as shared with compliance work.
            shared=bucket.name in shared or not declared,
        ),
    )


def _throttled_buckets(operation: str, plans: Mapping[str, tuple[_Plan, ...]]) -> tuple[_Plan, ...]:
    """The buckets a 429 of `operation` pauses. A 429 does not say which bucket was
    exceeded: those only this operation draws from are taken to be the one (say,
    ActiveCampaign's bulk import limit rather than the account's); with none of its
    own, every bucket it draws from."""
    own = plans.get(operation, ())
    others = {p.key for op, ps in plans.items() if op != operation for p in ps}
    alone = tuple(p for p in own if p.key not in others)
    return alone or own


def _tightness(plan: _Plan) -> float:
    """Calls a second the bucket allows this work at its steadiest window: fewer is tighter."""
    return min(capacity.calls / capacity.window.seconds for capacity in plan.limits)


def _count(operation: str, plans: Sequence[_Plan], waited: float) -> None:
    for plan in plans:
        metrics.BUDGET_CALLS.labels(plan.bucket.name).inc()
        if waited:
            metrics.BUDGET_WAIT.labels(operation, plan.bucket.name).observe(waited)


def _key_safe(name: str) -> str:
    """A KV key part from a bucket name such as `profile-bulk-import-jobs/{id}`."""
    return _KEY_UNSAFE.sub("_", name)


# Give-backs, and reservations called off, under way in tasks of their own (which the
# event loop holds only weakly): each logged should it fail, whether or not its
# caller is still there to see it.
_UNDER_WAY: set[asyncio.Future[Any]] = set()


def _logged_if_failed(operation: str, releasing: asyncio.Future[None]) -> None:
    _UNDER_WAY.discard(releasing)
    if not releasing.cancelled() and (exc := releasing.exception()) is not None:
        log.warning("%s: cannot give back a reservation not used (%r)", operation, exc)


async def give_backs_settled(timeout_s: float) -> None:
    """Wait, up to `timeout_s`, until no give-back is under way: a process about to
    close its NATS connection lets them reach the budget first (else their calls count
    until their windows end, which is safe). Those that begin meanwhile are waited for
    too: a reservation called off by the shutdown's cancel gives back once its round
    trips end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while _UNDER_WAY and (left := deadline - loop.time()) > 0:
        await asyncio.wait(set(_UNDER_WAY), timeout=left)
