"""Retry timing is a pure function of the attempt number."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.delivery.retry import compute_backoff, exhausted, retry_delay
from dispatcher.settings import DispatcherSettings


def test_schedule_is_the_seeds() -> None:
    settings_ = DispatcherSettings()
    delays = [compute_backoff(n) for n in range(1, settings_.max_attempts)]
    assert delays == [1, 2, 4, 8, 16, 32]
    assert not exhausted(6, max_attempts=settings_.max_attempts)
    assert exhausted(7, max_attempts=settings_.max_attempts)


@settings(max_examples=100)
@given(attempt=st.integers(1, 20), retry_after=st.one_of(st.none(), st.floats(0, 120)))
def test_retry_after_only_ever_lengthens_the_wait(attempt: int, retry_after: float | None) -> None:
    delay = retry_delay(attempt, retry_after=retry_after)
    assert delay >= compute_backoff(attempt)
    assert delay == max(compute_backoff(attempt), retry_after or 0)


@settings(max_examples=100)
@given(attempt=st.integers(1, 30), base=st.floats(0.001, 10))
def test_each_wait_doubles_the_last(attempt: int, base: float) -> None:
    assert compute_backoff(attempt + 1, base_s=base) == pytest.approx(
        2 * compute_backoff(attempt, base_s=base)
    )


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        compute_backoff(0)
