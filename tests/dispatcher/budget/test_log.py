"""The budget's rule on its own (no NATS): calls admitted by the sliding log and
reaching the provider up to the margin late never exceed a window of the provider,
however its windows are aligned, nor, once an answer told where its fixed windows
begin (or, for a clock-aligned window, the clock within its skew), a window of the
provider so aligned; compliance work keeps its share."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.budget.log import _TIE_S as TIE_S
from dispatcher.budget.log import (
    DEFAULT_PROVIDER_SKEW_S,
    MAX_PROVIDER_SKEW_S,
    REALIGN_AFTER_S,
    BucketLog,
    Capacity,
    Edge,
    capacities,
    horizon_s,
    observed_edge,
)
from dispatcher.providers.base import RateBucket, RateWindow
from service.devstack import LOCAL_SANDBOX_SKEW_S
from tests.dispatcher.budget.helpers import most_in_any_window, most_in_fixed_windows

MARGIN_S = 0.1
BUCKETS = [
    RateBucket("event-bulk-create-jobs", (RateWindow(10, 1.0), RateWindow(150, 60.0))),
    RateBucket("data-privacy-deletion-jobs", (RateWindow(3, 1.0), RateWindow(60, 60.0))),
    RateBucket("account", (RateWindow(5, 1.0),)),
]
request = st.tuples(
    st.floats(0, 0.5),  # time since the previous request
    st.booleans(),  # compliance work
    # how late it reaches the provider after its stamp (a hair early: stamps of one
    # instant run up to the tie ahead of the clock)
    st.floats(-TIE_S, MARGIN_S),
    st.none() | st.floats(0, 0.3),  # when its answer comes after that (None: never)
)
requests = st.lists(request, max_size=400)


@settings(deadline=None)
@given(bucket=st.sampled_from(BUCKETS), shared=st.booleans(), work=requests)
def test_admitted_calls_never_exceed_a_window_of_any_alignment(
    bucket: RateBucket, shared: bool, work: list[tuple[float, bool, float, float | None]]
) -> None:
    """Answers shorten how long a call counts: to when it was answered, which is after
    it reached the provider."""
    arrivals, bulk_arrivals = _admitted(BucketLog(), bucket, shared, work)
    for window in bucket.windows:
        assert most_in_any_window(arrivals, window.seconds) <= window.calls
        open_calls = capacities(bucket, compliance=False, shared=shared)
        (mine,) = [c.calls for c in open_calls if c.window == window]
        assert most_in_any_window(bulk_arrivals, window.seconds) <= mine


Work = list[tuple[float, bool, float, float | None]]


def _admitted(
    log: BucketLog,
    bucket: RateBucket,
    shared: bool,
    work: Work,
    provider_skew_s: float = DEFAULT_PROVIDER_SKEW_S,
) -> tuple[list[float], list[float]]:
    """Each call of `work` admitted by the log as soon as it may go, in turn (the next
    one comes its gap after the previous one was admitted); when every call and when
    the bulk ones reached the provider. Answers shorten how long a call counts.
    `provider_skew_s`: the budget's, where the provider's windows are counted by the clock."""
    now, arrivals, bulk = 0.0, [], []
    answers: list[tuple[float, float]] = []  # (answered at, stamp)
    for gap, compliance, late, answer_after in work:
        now += gap
        for answered_at, stamp in [a for a in answers if a[0] <= now]:
            log = log.answered({stamp: answered_at - stamp})
        answers = [a for a in answers if a[0] > now]
        limits = capacities(bucket, compliance=compliance and shared, shared=shared)
        stamp = log.next_stamp(now + log.wait(now, limits, MARGIN_S, provider_skew_s))
        assert log.wait(stamp, limits, MARGIN_S, provider_skew_s) == 0, "woken before it fits"
        log = log.with_call(stamp, horizon_s(bucket, MARGIN_S))
        arrivals.append(stamp + late)
        if not (compliance and shared):
            bulk.append(stamp + late)
        if answer_after is not None:
            answers.append((stamp + late + answer_after, stamp))
        now = stamp
    return arrivals, bulk


def test_answered_calls_leave_room_sooner_than_the_margin() -> None:
    account = BUCKETS[2]
    limits = capacities(account, compliance=True, shared=False)
    log = BucketLog()
    for i in range(5):
        log = log.with_call(log.next_stamp(i * 0.01), horizon_s(account, MARGIN_S))
    in_flight = log.wait(0.05, limits, MARGIN_S)
    assert in_flight == pytest.approx(1.0 + MARGIN_S - 0.05, abs=1e-4)
    answered = log.answered({log.stamps[0]: 0.004})
    assert answered.wait(0.05, limits, MARGIN_S) == pytest.approx(1.004 - 0.05, abs=1e-4)


def test_stamps_are_unique_so_that_an_answer_names_one_call() -> None:
    log = BucketLog().with_call(5.0, 60.0)
    second = log.next_stamp(4.0)  # a replica whose clock is behind
    assert second > 5.0
    log = log.with_call(second, 60.0).answered({second: 0.01})
    assert log.reached == (None, 0.01)


def test_bulk_work_leaves_the_compliance_share_of_a_shared_bucket() -> None:
    account, events = BUCKETS[2], BUCKETS[0]
    assert [c.calls for c in capacities(account, compliance=False, shared=True)] == [4]
    assert [c.calls for c in capacities(account, compliance=True, shared=True)] == [5]
    assert [c.calls for c in capacities(events, compliance=False, shared=True)] == [8, 127]
    assert [c.calls for c in capacities(events, compliance=False, shared=False)] == [10, 150]


def test_a_log_survives_its_encoding() -> None:
    log = BucketLog((1.5, 2.25), paused_until=9.0)
    assert BucketLog.decode(log.encode()) == log
    refuted = log.paused(12.0)
    assert BucketLog.decode(refuted.encode()) == refuted
    assert refuted.aligned_from == 12.0 + REALIGN_AFTER_S
    answered = log.answered({2.25: 0.003})
    assert BucketLog.decode(answered.encode()) == answered
    assert BucketLog.decode(None) == BucketLog()


# The provider's fixed windows once an answer told where they begin (`Edge`).
STEADY = BUCKETS[0]  # 10 a second, 150 a minute


# Enough calls, close enough together, to fill minutes: 150 to 500 calls at about the
# minute's pace (150 a minute: 0.4 s apart), so that full minutes end near an edge, and
# calls that reach the provider at either end of what the log allows.
busy_request = st.tuples(
    st.sampled_from([0.4, 0.41]) | st.floats(0.3, 0.5),
    st.booleans(),
    st.sampled_from([-TIE_S, MARGIN_S]) | st.floats(-TIE_S, MARGIN_S),
    st.none() | st.floats(0, 0.3),
)
busy_requests = st.lists(busy_request, min_size=150, max_size=500)
# How far the edge's range reaches before and after the provider's true edge.
edge_slack = st.sampled_from([0.0, 2.0]) | st.floats(0, 2)


@settings(deadline=None)
@given(
    offset=st.floats(0, 60),  # where the provider's minutes begin
    before=edge_slack,  # how far the edge's range starts before it
    after=edge_slack,  # and ends after it
    shared=st.booleans(),
    work=busy_requests,
)
def test_with_a_known_edge_admitted_calls_never_exceed_a_window_of_the_provider(
    offset: float,
    before: float,
    after: float,
    shared: bool,
    work: list[tuple[float, bool, float, float | None]],
) -> None:
    """The steady window is counted as the provider's fixed windows, the edge's range
    holding where they truly begin; the burst window still whatever its alignment."""
    bucket = STEADY
    log = BucketLog(edge=Edge(offset - before, offset + after, 60.0))
    arrivals, bulk = _admitted(log, bucket, shared, work)
    burst, steady = bucket.windows
    assert most_in_any_window(arrivals, burst.seconds) <= burst.calls
    assert most_in_fixed_windows(arrivals, steady.seconds, offset=offset) <= steady.calls
    if shared:
        (open_steady,) = [c.calls for c in capacities(bucket, compliance=False, shared=True)][1:]
        assert most_in_fixed_windows(bulk, steady.seconds, offset=offset) <= open_steady


def _full_minute(log: BucketLog, limits: tuple[Capacity, ...]) -> tuple[BucketLog, float]:
    """`log` after a minute's worth of calls as early as they may go from 0."""
    now = 0.0
    for _ in range(150):
        now = log.next_stamp(now + log.wait(now, limits, MARGIN_S))
        log = log.with_call(now, horizon_s(STEADY, MARGIN_S)).answered({now: 0.01})
    return log, now


def test_a_known_edge_lets_the_next_minute_begin_when_the_providers_does() -> None:
    """150 calls go in the first 15 s (10 a second); without an edge the 151st waits until
    the first has left a sliding minute, with one it goes as the provider's next minute
    begins (here at 30 s, known within 0.5 s) and the next minute's calls follow at the
    burst rate."""
    limits = capacities(STEADY, compliance=True, shared=False)
    sliding, last = _full_minute(BucketLog(), limits)
    assert last < 15.0
    assert sliding.wait(last, limits, MARGIN_S) == pytest.approx(60.0 + 0.01 - last, abs=0.01)
    known, last = _full_minute(BucketLog(edge=Edge(-30.25, -29.75, 60.0)), limits)
    assert known.wait(last, limits, MARGIN_S) == pytest.approx(30.25 - last, abs=0.01)


def test_an_edge_is_narrowed_by_each_answer_and_dropped_when_they_disagree() -> None:
    edge = Edge(10.0, 12.0, 60.0)
    assert edge.narrowed(Edge(71.5, 72.5, 60.0)) == Edge(11.5, 12.0, 60.0)
    assert edge.narrowed(Edge(-49.0, -47.5, 60.0)) == Edge(11.0, 12.0, 60.0)
    assert edge.narrowed(Edge(30.0, 31.0, 60.0)) is None
    log = BucketLog(edge=edge).with_edge(Edge(30.0, 31.0, 60.0))
    assert log.edge is None  # counted whatever the alignment again
    assert log.with_edge(Edge(30.0, 31.0, 60.0)).edge == Edge(30.0, 31.0, 60.0)


def test_an_answer_tells_an_edge_within_a_second_either_way_of_its_reset() -> None:
    # Sent at 100.0, answered at 100.2, "RateLimit-Reset: 17": the window ends near 117.
    edge = observed_edge(100.0, 100.2, 17.0, 60.0, skew_s=0.01)
    assert edge is not None
    assert edge.lo == pytest.approx(100.0 - TIE_S + 16.0 - 0.01)
    assert edge.hi == pytest.approx(100.2 + 18.0 + 0.01)
    assert observed_edge(100.0, 140.0, 17.0, 60.0, skew_s=0.01) is None  # too slow to say
    assert observed_edge(100.0, 100.2, float("nan"), 60.0, skew_s=0.01) is None
    assert observed_edge(100.0, 100.2, 61.0, 60.0, skew_s=0.01) is None


def test_a_429_makes_the_log_forget_its_edge() -> None:
    log = BucketLog(edge=Edge(1.0, 2.0, 60.0)).paused(30.0)
    assert log.edge is None and log.paused_until == 30.0


def test_an_edge_survives_the_encoding() -> None:
    log = BucketLog((1.5,), paused_until=2.0, edge=Edge(0.5, 1.25, 60.0))
    assert BucketLog.decode(log.encode()) == log


def test_a_call_in_flight_counts_in_every_window_it_may_still_reach() -> None:
    """One call a minute, the provider's minutes beginning at 60 s exactly: a call stamped
    at 59.95 s and not yet answered may reach the provider after 60 s, so it holds the
    minute that begins there; answered at once, it is known to be in the one before."""
    limits = capacities(RateBucket("one", (RateWindow(1, 60.0),)), compliance=True, shared=False)
    in_flight = BucketLog(edge=Edge(60.0, 60.0, 60.0)).with_call(59.95, 61.0)
    assert in_flight.wait(60.5, limits, MARGIN_S) == pytest.approx(120 - 60.5, abs=1e-3)
    answered = in_flight.answered({59.95: 0.01})
    assert answered.wait(60.5, limits, MARGIN_S) == 0


def test_a_call_waits_out_the_whole_range_of_an_edge_after_a_full_window() -> None:
    """One call a minute, the provider's minute beginning somewhere from 58 to 62 s: the
    minute before holds a call, so a call at 59 s may fall in it and waits until 62 s."""
    limits = capacities(RateBucket("one", (RateWindow(1, 60.0),)), compliance=True, shared=False)
    log = BucketLog(edge=Edge(58.0, 62.0, 60.0)).with_call(10.0, 61.0).answered({10.0: 0.01})
    assert log.wait(59.0, limits, MARGIN_S) == pytest.approx(62.0 - 59.0, abs=1e-3)
    assert log.wait(62.5, limits, MARGIN_S) == 0


def test_a_call_near_an_edge_counts_in_both_windows_it_may_fall_in() -> None:
    """Two calls a minute, the minute beginning somewhere from 58 to 62 s: a call at 10 s
    and one at 59 s may both be in the minute before, so a third at 60 s waits for 62 s."""
    limits = capacities(RateBucket("two", (RateWindow(2, 60.0),)), compliance=True, shared=False)
    log = BucketLog(edge=Edge(58.0, 62.0, 60.0))
    for stamp in (10.0, 59.0):
        log = log.with_call(stamp, 61.0).answered({stamp: 0.01})
    assert log.wait(60.0, limits, MARGIN_S) == pytest.approx(2.0, abs=1e-3)


# Klaviyo's burst window, counted as beginning at whole seconds of the clock.
CLOCK_ALIGNED = RateBucket(
    "event-bulk-create-jobs", (RateWindow(10, 1.0, clock_aligned=True), RateWindow(150, 60.0))
)


# Calls in bursts (a second's ten as soon as it opens, or a little into it) reaching the
# provider at either end of what the log allows, so that seconds fill near their edges.
bursty_request = st.tuples(
    st.sampled_from([0.0, 0.06, 0.3]) | st.floats(0, 0.5),
    st.booleans(),
    st.sampled_from([-TIE_S, MARGIN_S]) | st.floats(-TIE_S, MARGIN_S),
    st.none() | st.just(0.0) | st.floats(0, 0.3),
)


# The skews a deployment may state (MARKETING_BUDGET_PROVIDER_SKEW_S): the default, the
# local sandbox's, any other up to the setting's bound.
configured_skews = st.sampled_from([DEFAULT_PROVIDER_SKEW_S, LOCAL_SANDBOX_SKEW_S]) | st.floats(
    0, MAX_PROVIDER_SKEW_S
)


@settings(deadline=None, max_examples=300)
@given(
    configured=configured_skews,
    within=st.sampled_from([-1.0, 1.0]) | st.floats(-1.0, 1.0),
    shared=st.booleans(),
    work=st.lists(bursty_request, min_size=20, max_size=200),
)
def test_a_clock_aligned_window_is_never_exceeded_where_the_clock_within_its_skew_puts_it(
    configured: float, within: float, shared: bool, work: Work
) -> None:
    """The provider's seconds begin up to the configured skew after ours (or before): at
    `within` of it; its minutes are still counted whatever their alignment (no answer
    told their edge here)."""
    skew = configured * within
    arrivals, bulk = _admitted(BucketLog(), CLOCK_ALIGNED, shared, work, configured)
    burst, steady = CLOCK_ALIGNED.windows
    assert most_in_fixed_windows(arrivals, burst.seconds, offset=skew) <= burst.calls
    assert most_in_any_window(arrivals, steady.seconds) <= steady.calls
    if shared:
        open_burst, _ = (c.calls for c in capacities(CLOCK_ALIGNED, compliance=False, shared=True))
        assert most_in_fixed_windows(bulk, burst.seconds, offset=skew) <= open_burst


def test_a_narrower_skew_lets_a_call_near_an_edge_count_in_its_second_alone() -> None:
    """Nine calls at 5.0 s, a tenth stamped 40 ms before 6 s and answered 10 ms later. With
    the default skew (50 ms) it may have reached the provider after its second turned, so
    the next second has room for nine more only; with the local sandbox's (5 ms) it is
    known to be in its own second, and the next one takes ten."""
    limits = capacities(CLOCK_ALIGNED, compliance=True, shared=False)
    log = BucketLog()
    for stamp in [5.0 + i * 0.01 for i in range(9)] + [5.96]:
        log = log.with_call(stamp, horizon_s(CLOCK_ALIGNED, MARGIN_S)).answered({stamp: 0.01})
    for skew, room in ((DEFAULT_PROVIDER_SKEW_S, 9), (LOCAL_SANDBOX_SKEW_S, 10)):
        taken, now = log, 6.0 + skew + 0.001
        for _ in range(room):
            now += taken.wait(now, limits, MARGIN_S, skew)
            stamp = taken.next_stamp(now)
            taken = taken.with_call(stamp, horizon_s(CLOCK_ALIGNED, MARGIN_S))
            taken = taken.answered({stamp: 0.001})
        assert now < 7.0, f"{room} calls fit the second from 6 s (skew {skew})"
        assert taken.wait(now, limits, MARGIN_S, skew) > 6.9 - now, "and no more"


@settings(deadline=None)
@given(shared=st.booleans(), work=requests)
def test_after_a_429_a_clock_aligned_window_is_counted_whatever_its_alignment(
    shared: bool, work: Work
) -> None:
    """A 429 refutes where the clock puts the provider's seconds: until REALIGN_AFTER_S
    after its pause they are counted as a sliding window (the work here is shorter)."""
    arrivals, _ = _admitted(BucketLog().paused(0.0), CLOCK_ALIGNED, shared, work)
    assert max(arrivals, default=0.0) < REALIGN_AFTER_S
    assert most_in_any_window(arrivals, 1.0) <= 10


def _second_spent(log: BucketLog, at: float) -> BucketLog:
    """`log` with 10 calls stamped 10 ms apart from `at`, each answered in 10 ms."""
    for i in range(10):
        stamp = at + i * 0.01
        log = log.with_call(stamp, horizon_s(CLOCK_ALIGNED, MARGIN_S)).answered({stamp: 0.01})
    return log


def test_the_clocks_next_second_opens_at_once_unless_a_429_refuted_it_lately() -> None:
    """Ten calls spent a second from 5.5 s. On the clock the next second's first call
    may go at 6.06 s (it can no longer fall in the full one, skew and margin allowed);
    counted sliding it waits until the first of the ten has left a second after its
    answer. A 429 at 0 s makes the log count sliding until REALIGN_AFTER_S after it."""
    limits = capacities(CLOCK_ALIGNED, compliance=True, shared=False)
    aligned = _second_spent(BucketLog(), 5.5)
    assert aligned.wait(6.06, limits, MARGIN_S) == 0
    assert aligned.wait(6.0, limits, MARGIN_S) > 0  # it might still fall in the full one
    refuted = _second_spent(BucketLog().paused(0.0), 5.5)
    assert refuted.wait(6.06, limits, MARGIN_S) == pytest.approx(0.45, abs=0.01)
    later = REALIGN_AFTER_S + 5.5
    assert _second_spent(BucketLog().paused(0.0), later).wait(later + 0.56, limits, MARGIN_S) == 0
