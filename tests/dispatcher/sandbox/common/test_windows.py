"""Epoch-aligned fixed windows: never more than a window's limit, refusals only when full,
Retry-After to the window's end."""

from __future__ import annotations

import math
import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.sandbox.common.windows import KEPT_WINDOWS, RateWindow, Refusal, WindowCounter
from tests.dispatcher.helpers import EpochClock

PER_SECOND = RateWindow("api", 5, 1)
PER_MINUTE = RateWindow("bulk", 12, 60)


def test_the_sixth_call_in_a_second_is_refused_until_the_next_epoch_second() -> None:
    clock = EpochClock(1000.25)
    counter = WindowCounter(clock)

    admitted = [counter.admit([PER_SECOND]) for _ in range(5)]
    refused = counter.admit([PER_SECOND])
    clock.now = 1000.99
    still = counter.admit([PER_SECOND])
    clock.now = 1001.0
    next_second = counter.admit([PER_SECOND])

    assert admitted == [None] * 5
    assert refused is not None and refused.window == PER_SECOND and refused.retry_after == 1
    assert still is not None
    assert next_second is None
    assert counter.peaks() == {"api": {"1": {"limit": 5, "peak": 5}}}


def test_retry_after_is_the_whole_seconds_left_in_a_minute_window() -> None:
    clock = EpochClock(6000.0 + 17.5)
    counter = WindowCounter(clock)
    for _ in range(12):
        assert counter.admit([PER_MINUTE]) is None

    refused = counter.admit([PER_MINUTE])

    assert refused is not None and refused.retry_after == 43  # 42.5 s left, rounded up


def test_a_refused_call_counts_in_no_window() -> None:
    clock = EpochClock(0.0)
    counter = WindowCounter(clock)
    tight = RateWindow("tight", 1, 60)
    assert counter.admit([PER_SECOND, tight]) is None

    assert counter.admit([PER_SECOND, tight]) is not None

    assert counter.peaks() == {
        "api": {"1": {"limit": 5, "peak": 1}},
        "tight": {"60": {"limit": 1, "peak": 1}},
    }


def test_without_enforcing_every_call_is_admitted_and_counted() -> None:
    counter = WindowCounter(EpochClock(0.0))

    assert all(counter.admit([PER_SECOND], enforce=False) is None for _ in range(9))
    assert counter.peaks() == {"api": {"1": {"limit": 5, "peak": 9}}}


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.floats(min_value=0.0, max_value=1.5), min_size=1, max_size=120))
def test_no_window_ever_admits_more_than_its_limit(steps: list[float]) -> None:
    clock = EpochClock(1_000_000.0)
    counter = WindowCounter(clock)
    admitted: dict[tuple[str, int], int] = {}
    for step in steps:
        clock.now += step
        refusal = counter.admit([PER_SECOND, PER_MINUTE])
        keys = [(w.name, math.floor(clock.now / w.seconds)) for w in (PER_SECOND, PER_MINUTE)]
        if refusal is None:
            for key in keys:
                admitted[key] = admitted.get(key, 0) + 1
        else:
            full = (refusal.window.name, math.floor(clock.now / refusal.window.seconds))
            assert admitted.get(full, 0) == refusal.window.limit, "refused only when full"
            ends = (full[1] + 1) * refusal.window.seconds
            assert refusal.retry_after == max(1, math.ceil(ends - clock.now))
    assert all(count <= 5 for (name, _), count in admitted.items() if name == "api")
    assert all(count <= 12 for (name, _), count in admitted.items() if name == "bulk")


def test_a_call_that_read_the_clock_before_an_edge_cannot_set_the_next_window_back() -> None:
    """The server's threads draw side by side. Had a call read the clock just before
    an edge and drawn after a call of the next second, it would have set that
    second's count back to its own, and the next second would admit anew."""
    reading, drawn_after_edge = threading.Event(), threading.Event()
    after_edge = 11.001

    def clock() -> float:
        if threading.current_thread().name == "before-edge":
            reading.set()
            drawn_after_edge.wait(timeout=0.5)  # the other call draws meanwhile, if it may
            return 10.999
        return after_edge

    counter = WindowCounter(clock)
    before_edge = threading.Thread(
        target=counter.draw, args=([PER_SECOND],), name="before-edge", daemon=True
    )
    before_edge.start()
    reading.wait(timeout=5)
    first_after = counter.draw([PER_SECOND])
    drawn_after_edge.set()
    before_edge.join(timeout=5)
    second_after = counter.draw([PER_SECOND])

    assert not isinstance(first_after, Refusal) and first_after.counts == (1,)
    # The second's count went on; it did not start again.
    assert not isinstance(second_after, Refusal) and second_after.counts == (2,)


def test_a_clock_stepped_back_counts_in_the_window_it_reads_while_that_one_is_kept() -> None:
    clock = EpochClock(11.1)
    counter = WindowCounter(clock)
    counter.draw([PER_SECOND])
    counter.draw([PER_SECOND])
    clock.now = 10.9  # the system's clock stepped back a little: second 10's own count

    in_ten = [counter.admit([PER_SECOND]) for _ in range(6)]
    clock.now = 11.2
    in_eleven = [counter.admit([PER_SECOND]) for _ in range(4)]

    assert in_ten[:5] == [None] * 5 and in_ten[5] is not None
    assert in_eleven[:3] == [None] * 3 and in_eleven[3] is not None  # 5 in second 11


def test_a_clock_stepped_back_past_the_kept_windows_counts_in_the_newest_window_seen() -> None:
    clock = EpochClock(11.1)
    counter = WindowCounter(clock)
    counter.draw([PER_SECOND])
    counter.draw([PER_SECOND])
    clock.now = 11.1 - KEPT_WINDOWS  # that second's count is gone: it cannot start again

    counted = [counter.admit([PER_SECOND]) for _ in range(4)]

    assert counted[:3] == [None] * 3 and counted[3] is not None  # 5 in second 11, no more


def test_a_call_drawn_late_counts_in_the_window_it_arrived_in() -> None:
    """A server busy with work of its own draws a call after calls that arrived after
    it: it takes a place of its own second, not of the one the others filled."""
    counter = WindowCounter(EpochClock(12.2))
    next_second = [counter.draw([PER_SECOND], at=12.1) for _ in range(5)]

    late = [counter.draw([PER_SECOND], at=11.95) for _ in range(6)]

    assert [d.counts for d in next_second if not isinstance(d, Refusal)] == [
        (n,) for n in range(1, 6)
    ]
    assert [d.counts for d in late[:5] if not isinstance(d, Refusal)] == [(n,) for n in range(1, 6)]
    assert isinstance(late[5], Refusal) and late[5].retry_after == 1
    assert not isinstance(late[0], Refusal) and late[0].at == 11.95


@settings(max_examples=200, deadline=None)
@given(
    arrivals=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=1.5), st.floats(min_value=0.0, max_value=2.0)),
        min_size=1,
        max_size=120,
    )
)
def test_calls_drawn_late_never_overfill_the_window_they_arrived_in(
    arrivals: list[tuple[float, float]],
) -> None:
    """Calls arrive in order and are drawn up to 2 s later, in any order: counted by
    arrival, no window of arrivals ever admits more than its limit, and a call is
    refused only when a window it arrived in is full."""
    now = 1_000_000.0
    stamped = []
    for step, delay in arrivals:
        now += step
        stamped.append((now, now + delay))
    clock = EpochClock(now)
    counter = WindowCounter(clock)
    admitted: dict[tuple[str, int], int] = {}
    for arrived, drawn in sorted(stamped, key=lambda a: a[1]):
        clock.now = drawn
        keys = [(w.name, math.floor(arrived / w.seconds)) for w in (PER_SECOND, PER_MINUTE)]
        refusal = counter.admit([PER_SECOND, PER_MINUTE], at=arrived)
        if refusal is None:
            for key in keys:
                admitted[key] = admitted.get(key, 0) + 1
        else:
            full = (refusal.window.name, math.floor(arrived / refusal.window.seconds))
            assert admitted.get(full, 0) == refusal.window.limit, "refused only when full"
    assert all(count <= 5 for (name, _), count in admitted.items() if name == "api")
    assert all(count <= 12 for (name, _), count in admitted.items() if name == "bulk")
