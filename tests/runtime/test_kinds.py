"""Labels for metrics and dead-letter subjects: a kind's name, or for a message
without a type its old kind string when that is usable as subject tokens."""

from __future__ import annotations

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds


def test_a_typed_message_is_labelled_by_its_kind() -> None:
    for kind in kinds.ALL:
        assert kinds.label(kind, "ignored.kind") == kinds.name(kind)


@pytest.mark.parametrize(
    ("old", "label"),
    [
        ("contact.upserted", "contact.upserted"),
        ("segment.joined", "segment.joined"),
        ("", kinds.UNKNOWN),
        ("two words", kinds.UNKNOWN),  # not a subject token
        ("marketing.>", kinds.UNKNOWN),  # a wildcard
        ("a..b", kinds.UNKNOWN),  # an empty token
        ("x" * 65, kinds.UNKNOWN),
    ],
)
def test_an_untyped_message_is_labelled_by_its_old_kind_if_that_is_a_name(
    old: str, label: str
) -> None:
    assert kinds.label(bus_pb2.KIND_UNSPECIFIED, old) == label
