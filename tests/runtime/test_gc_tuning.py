"""The collector settings applied once a process has started."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from marketing_runtime import gc_tuning


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_threshold_raised_and_start_up_heap_frozen(restored_gc: None) -> None:
    _, gen1, gen2 = gc.get_threshold()
    alive_at_start_up = {"payload": [1, 2, 3]}

    gc_tuning.tune_after_startup(25_000)

    assert gc.get_threshold() == (25_000, gen1, gen2)
    assert gc.get_freeze_count() > 0
    assert not any(o is alive_at_start_up for o in gc.get_objects())  # no longer walked


def test_zero_leaves_the_collector_as_it_was(restored_gc: None) -> None:
    before = gc.get_threshold()

    gc_tuning.tune_after_startup(0)

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


class _Node:
    pass


def test_cycles_are_still_collected_without_asking(restored_gc: None) -> None:
    gc_tuning.tune_after_startup(20_000)
    node = _Node()
    node.self = node  # type: ignore[attr-defined]
    gone = weakref.ref(node)
    del node

    # Past the threshold: a young-generation pass runs.
    allocated: list[list[int]] = [[] for _ in range(30_000)]

    assert gone() is None
    assert len(allocated) == 30_000


def test_full_passes_can_be_turned_off_for_a_growing_store(restored_gc: None) -> None:
    # CPython's default young threshold, so that the old generation's turn comes soon.
    gc_tuning.tune_after_startup(700, full_passes=False)
    gc.collect()  # counts start from zero
    full_passes_before = gc.get_stats()[2]["collections"]

    store = [[i] for i in range(1_000_000)]  # far past 25 % growth of the old generation

    assert gc.get_threshold()[0] == 700
    assert gc.get_stats()[2]["collections"] == full_passes_before
    assert len(store) == 1_000_000
