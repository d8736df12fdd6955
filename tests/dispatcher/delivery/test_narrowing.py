"""Narrowing a refused bulk call: given the call's items and the positions the refusal
named (if any), which items fail and which are sent again."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatcher.delivery.narrowing import Narrowed, narrow


def test_the_items_named_fail_and_the_others_are_sent_again_together() -> None:
    assert narrow("abcde", [3, 1]) == Narrowed(["b", "d"], [["a", "c", "e"]])


def test_when_every_item_is_named_nothing_is_sent_again() -> None:
    assert narrow("ab", [0, 1, 1]) == Narrowed(["a", "b"], [])


def test_positions_outside_the_call_are_ignored() -> None:
    assert narrow("abc", [-1, 3, 2]) == Narrowed(["c"], [["a", "b"]])
    assert narrow("abcd", [7]) == Narrowed([], [["a", "b"], ["c", "d"]]), "as if none was named"


def test_a_refusal_naming_nothing_splits_the_call_in_halves() -> None:
    assert narrow("abcde", []) == Narrowed([], [["a", "b"], ["c", "d", "e"]])


def test_a_lone_item_refused_without_a_name_fails() -> None:
    assert narrow("a", []) == Narrowed(["a"], [])


def test_an_empty_call_has_nothing_to_narrow() -> None:
    assert narrow([], [0]) == Narrowed([], [])


def _deliver(items: list[int], bad: set[int], names_them: bool) -> tuple[list[int], list[int], int]:
    """Send `items` as a provider would take them: refusing a call holding any bad item,
    naming the bad ones or not. (delivered, failed, calls)"""
    delivered: list[int] = []
    failed: list[int] = []
    calls = 0
    pending = [items] if items else []
    while pending:
        call = pending.pop(0)
        calls += 1
        refused = [i for i, item in enumerate(call) if item in bad]
        if not refused:
            delivered += call
            continue
        narrowed = narrow(call, refused if names_them else [])
        failed += narrowed.failed
        pending = narrowed.retry + pending
    return delivered, failed, calls


@given(
    items=st.lists(st.integers(0, 10_000), unique=True, max_size=64),
    data=st.data(),
    names_them=st.booleans(),
)
def test_exactly_the_refused_items_fail_and_each_other_is_delivered_once(
    items: list[int], data: st.DataObject, names_them: bool
) -> None:
    bad = set(data.draw(st.lists(st.sampled_from(items), unique=True))) if items else set()

    delivered, failed, calls = _deliver(items, bad, names_them)

    assert sorted(failed) == sorted(bad)
    assert delivered == [item for item in items if item not in bad], "in order, once"
    assert calls <= max(2 * len(items) - 1, 0)
