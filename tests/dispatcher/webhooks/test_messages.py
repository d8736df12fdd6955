"""The EngagementReceived messages of a delivery: one, with an id that a repeat
of the delivery shares; split (the same way every time) only when too large."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st
from marketing.bus.v1 import bus_pb2
from marketing_runtime.timestamps import to_datetime

from dispatcher.webhooks import messages
from tests.dispatcher.webhooks.helpers import NOW


def engagement(external_id: str, detail: str = "") -> bus_pb2.Engagement:
    return bus_pb2.Engagement(
        provider="klaviyo",
        external_id=external_id,
        type=bus_pb2.ENGAGEMENT_TYPE_OPENED,
        detail=detail,
    )


def test_one_delivery_is_one_message() -> None:
    engagements = [engagement("b"), engagement("a")]

    (message,) = messages.received("klaviyo", engagements, NOW)

    assert message.id == "klaviyo:" + hashlib.sha256(b"a\nb").hexdigest()
    assert [e.external_id for e in message.engagements] == ["a", "b"]
    assert to_datetime(message.receive_time) == NOW


def test_nothing_is_no_message() -> None:
    assert messages.received("klaviyo", [], NOW) == []


def test_the_id_is_the_providers_own() -> None:
    ids = {messages.message_id(p, ["a"]) for p in ("klaviyo", "activecampaign")}

    assert len(ids) == 2


@given(ids=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=20, unique=True))
def test_the_id_does_not_depend_on_the_order(ids: list[str]) -> None:
    forward = messages.received("klaviyo", [engagement(i) for i in ids], NOW)
    backward = messages.received("klaviyo", [engagement(i) for i in reversed(ids)], NOW)

    assert [m.id for m in forward] == [m.id for m in backward]


@given(
    ids=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=60, unique=True),
    limit=st.integers(100, 2000),
)
def test_a_delivery_too_large_for_one_message_is_split_the_same_way_every_time(
    ids: list[str], limit: int
) -> None:
    engagements = [engagement(i, detail="x" * 30) for i in ids]

    parts = messages.received("klaviyo", engagements, NOW, limit=limit)
    again = messages.received("klaviyo", list(reversed(engagements)), NOW, limit=limit)

    assert [p.SerializeToString() for p in parts] == [p.SerializeToString() for p in again]
    assert sorted(e.external_id for p in parts for e in p.engagements) == sorted(ids)
    for part in parts:
        assert part.id == messages.message_id("klaviyo", [e.external_id for e in part.engagements])
        assert len(part.engagements) == 1 or part.ByteSize() <= limit + 100  # id and time
