"""A decision's enrolment ids: random (UUID4), and ascending in the order its rows
are inserted, so that they go into the id and creation-time indexes one after
another (PostgreSQL orders uuids as their 128-bit numbers)."""

from __future__ import annotations

from service.flows.enrolments import _ascending_ids


def test_a_batchs_ids_are_random_distinct_and_ascending() -> None:
    ids = _ascending_ids(2000)

    assert len(set(ids)) == 2000
    assert all(u.version == 4 for u in ids)
    assert [u.int for u in ids] == sorted(u.int for u in ids)
    assert _ascending_ids(2000) != ids  # random, not a sequence
    assert _ascending_ids(0) == []
