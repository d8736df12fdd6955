"""Packing a full sync's people into bulk import jobs by the provider's limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatcher.delivery.packing import estimated_size, pack
from dispatcher.providers.base import OperationLimits, Profile
from dispatcher.providers.klaviyo.imports import job_body
from dispatcher.providers.klaviyo.limits import LIMITS


def test_ten_chunks_of_a_thousand_make_one_klaviyo_job_and_the_next_ones_another() -> None:
    limits = LIMITS.import_profiles
    assert limits is not None
    people = list(range(25_000))  # 25 chunks of 1,000, small profiles
    jobs = pack(people, [300] * len(people), limits)
    assert [len(job) for job in jobs] == [10_000, 10_000, 5_000]
    assert [p for job in jobs for p in job] == people


def test_a_chunk_of_a_thousand_makes_four_jobs_at_250_a_job() -> None:
    jobs = pack(list(range(1000)), [300] * 1000, OperationLimits(max_items=250))
    assert [len(job) for job in jobs] == [250] * 4


def test_bytes_close_a_job_before_its_items_do() -> None:
    limits = OperationLimits(max_items=10, max_bytes=1000, wrapping_bytes=100)
    jobs = pack(list("abcdef"), [400, 400, 100, 400, 2000, 1], limits)
    assert jobs == [["a", "b", "c"], ["d"], ["e"], ["f"]], "an oversized item goes alone"


@given(
    sizes=st.lists(st.integers(1, 600), max_size=200),
    max_items=st.integers(1, 20),
    max_bytes=st.none() | st.integers(101, 2000),
)
def test_jobs_keep_every_item_in_order_within_the_limits_and_close_only_when_full(
    sizes: list[int], max_items: int, max_bytes: int | None
) -> None:
    limits = OperationLimits(max_items=max_items, max_bytes=max_bytes, wrapping_bytes=100)
    items = list(range(len(sizes)))
    jobs = pack(items, sizes, limits)

    assert [i for job in jobs for i in job] == items
    for index, job in enumerate(jobs):
        following = jobs[index + 1] if index + 1 < len(jobs) else None
        used = 100 + sum(sizes[i] for i in job)
        assert job and len(job) <= max_items
        assert max_bytes is None or used <= max_bytes or len(job) == 1
        if following is not None:  # closed only when the next item would not fit
            assert len(job) == max_items or (
                max_bytes is not None and used + sizes[following[0]] > max_bytes
            )


@given(
    st.builds(
        Profile,
        email=st.emails(),
        first_name=st.none() | st.text(max_size=40),
        location=st.none() | st.text(max_size=40),
        properties=st.dictionaries(st.text(max_size=20), st.text(max_size=60), max_size=8),
    )
)
def test_the_estimate_is_never_below_what_a_profile_adds_to_a_klaviyo_job(profile: Profile) -> None:
    one, _ = job_body([profile])
    two, _ = job_body([profile, profile])
    assert estimated_size(profile) >= len(two) - len(one)
