"""The budget's rule on its own (no NATS): calls admitted by the sliding log and
reaching the provider up to the margin late never exceed a window of the provider,
however its windows are aligned; compliance work keeps its share."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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
        st.floats(0, MARGIN_S),  # how late it reaches the provider after its stamp
    ),
    max_size=400,
)


@given(bucket=st.sampled_from(BUCKETS), shared=st.booleans(), work=requests)
def test_admitted_calls_never_exceed_a_window_of_any_alignment(
    bucket: RateBucket, shared: bool, work: list[tuple[float, bool, float]]
) -> None:
    log, now = BucketLog(), 0.0
    arrivals: list[float] = []
    bulk_stamps: list[float] = []
    for gap, compliance, late in work:
        now += gap
        limits = capacities(bucket, compliance=compliance and shared, shared=shared)
        stamp = log.next_stamp(now + log.wait(now, limits, MARGIN_S))
        assert log.wait(stamp, limits, MARGIN_S) == 0, "woken before the call fits"
        log = log.with_call(stamp, horizon_s(bucket, MARGIN_S))
        arrivals.append(stamp + late)
        if not (compliance and shared):
            bulk_stamps.append(stamp)
    for window in bucket.windows:
        assert most_in_any_window(arrivals, window.seconds) <= window.calls
        open_calls = capacities(bucket, compliance=False, shared=shared)
        (mine,) = [c.calls for c in open_calls if c.window == window]
        assert most_in_any_window(bulk_stamps, window.seconds + MARGIN_S) <= mine


def test_bulk_work_leaves_the_compliance_share_of_a_shared_bucket() -> None:
    account, events = BUCKETS[2], BUCKETS[0]
    assert [c.calls for c in capacities(account, compliance=False, shared=True)] == [4]
    assert [c.calls for c in capacities(account, compliance=True, shared=True)] == [5]
    assert [c.calls for c in capacities(events, compliance=False, shared=True)] == [8, 127]
    assert [c.calls for c in capacities(events, compliance=False, shared=False)] == [10, 150]


def test_a_log_survives_its_encoding() -> None:
    log = BucketLog((1.5, 2.25), paused_until=9.0)
    assert BucketLog.decode(log.encode()) == log
    assert BucketLog.decode(None) == BucketLog()
