"""The account's tables: string ids from 1, lookups through indexes that follow deletions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.sandbox.activecampaign.store import Table


def test_ids_are_strings_counted_from_1_and_never_reused() -> None:
    table = Table("Thing", ("owner",))
    first = table.insert({"owner": "a"})
    table.delete(first["id"])

    second = table.insert({"owner": "a"})

    assert (first["id"], second["id"]) == ("1", "2")
    assert table.where(owner="a") == [second]


@settings(max_examples=100, deadline=None)
@given(
    operations=st.lists(
        st.tuples(st.booleans(), st.sampled_from("abc"), st.sampled_from("xy")), max_size=40
    )
)
def test_indexed_lookups_equal_a_scan(operations: list[tuple[bool, str, str]]) -> None:
    indexed, plain = Table("Thing", ("owner",)), Table("Thing")
    for insert, owner, kind in operations:
        if insert:
            indexed.insert({"owner": owner, "kind": kind})
            plain.insert({"owner": owner, "kind": kind})
        else:
            doomed = plain.first(owner=owner)
            if doomed is not None:
                plain.delete(doomed["id"])
                indexed.delete(doomed["id"])
    for owner in "abc":
        for kind in "xy":
            assert indexed.where(owner=owner, kind=kind) == plain.where(owner=owner, kind=kind)
            assert indexed.first(owner=owner) == plain.first(owner=owner)
