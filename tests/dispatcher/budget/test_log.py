"""The budget's rule on its own (no NATS): calls admitted by the sliding log and
reaching the provider up to the margin late never exceed a window of the provider,
however its windows are aligned; compliance work keeps its share."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.budget.log import _TIE_S as TIE_S
from dispatcher.budget.log import BucketLog, capacities, horizon_s
from dispatcher.providers.base import RateBucket, RateWindow
from tests.dispatcher.budget.helpers import most_in_any_window

MARGIN_S = 0.1
BUCKETS = [
    RateBucket("event-bulk-create-jobs", (RateWindow(10, 1.0), RateWindow(150, 60.0))),
    RateBucket("data-privacy-deletion-jobs", (RateWindow(3, 1.0), RateWindow(60, 60.0))),
    RateBucket("account", (RateWindow(5, 1.0),)),
]
requests = st.lists(
    st.tuples(
        st.floats(0, 0.5),  # time since the previous request
        st.booleans(),  # compliance work
        # how late it reaches the provider after its stamp (a hair early: stamps of one
        # instant run up to the tie ahead of the clock)
        st.floats(-TIE_S, MARGIN_S),
        st.none() | st.floats(0, 0.3),  # when its answer comes after that (None: never)
    ),
    max_size=400,
)


@settings(deadline=None)
@given(bucket=st.sampled_from(BUCKETS), shared=st.booleans(), work=requests)
def test_admitted_calls_never_exceed_a_window_of_any_alignment(
    bucket: RateBucket, shared: bool, work: list[tuple[float, bool, float, float | None]]
) -> None:
    """Answers shorten how long a call counts: to when it was answered, which is after
    it reached the provider."""
    log, now = BucketLog(), 0.0
    arrivals: list[float] = []
    bulk_arrivals: list[float] = []
    answers: list[tuple[float, float]] = []  # (answered at, stamp)
    for gap, compliance, late, answer_after in work:
        now += gap
        for answered_at, stamp in [a for a in answers if a[0] <= now]:
            log = log.answered({stamp: answered_at - stamp})
        answers = [a for a in answers if a[0] > now]
        limits = capacities(bucket, compliance=compliance and shared, shared=shared)
        stamp = log.next_stamp(now + log.wait(now, limits, MARGIN_S))
        assert log.wait(stamp, limits, MARGIN_S) == 0, "woken before the call fits"
        log = log.with_call(stamp, horizon_s(bucket, MARGIN_S))
        arrivals.append(stamp + late)
        if answer_after is not None:
            answers.append((stamp + late + answer_after, stamp))
        if not (compliance and shared):
            bulk_arrivals.append(stamp + late)
    for window in bucket.windows:
        assert most_in_any_window(arrivals, window.seconds) <= window.calls
        open_calls = capacities(bucket, compliance=False, shared=shared)
        (mine,) = [c.calls for c in open_calls if c.window == window]
        assert most_in_any_window(bulk_arrivals, window.seconds) <= mine


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
    answered = log.answered({2.25: 0.003})
    assert BucketLog.decode(answered.encode()) == answered
    assert BucketLog.decode(None) == BucketLog()
