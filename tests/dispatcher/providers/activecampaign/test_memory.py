"""The client's bounded memory of what ActiveCampaign holds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.providers.activecampaign.memory import Recent


def test_the_least_recently_used_entry_is_forgotten_first() -> None:
    memory: Recent[str, int] = Recent(2)
    memory.put("a", 1)
    memory.put("b", 2)
    assert memory.get("a") == 1  # "a" is now the most recent

    memory.put("c", 3)

    assert (memory.get("a"), memory.get("b"), memory.get("c")) == (1, None, 3)


def test_a_forgotten_entry_is_gone() -> None:
    memory: Recent[str, int] = Recent(2)
    memory.put("a", 1)

    memory.forget("a")
    memory.forget("never there")

    assert memory.get("a") is None
    assert len(memory) == 0


def test_a_memory_holds_something() -> None:
    with pytest.raises(ValueError):
        Recent(0)


@given(st.integers(1, 8), st.lists(st.integers(0, 20), max_size=60))
def test_it_never_holds_more_than_its_capacity_and_keeps_the_latest(
    capacity: int, keys: list[int]
) -> None:
    memory: Recent[int, int] = Recent(capacity)
    for key in keys:
        memory.put(key, key)

    assert len(memory) <= capacity
    if keys:
        assert memory.get(keys[-1]) == keys[-1]
