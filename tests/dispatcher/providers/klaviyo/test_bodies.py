"""An event bulk job assembled from its events' prepared resources: the JSON:API
document Klaviyo takes, no larger than the events worker counted it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.providers.base import TrackedEvent
from dispatcher.providers.klaviyo import bodies
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.providers.klaviyo.limits import LIMITS
from tests.dispatcher.helpers import API_KEY, WHEN


@pytest.fixture(scope="module")
def client() -> Iterator[KlaviyoClient]:
    made = KlaviyoClient(API_KEY, base_url="http://127.0.0.1:9")  # prepares only: never sends
    yield made
    asyncio.run(made.aclose())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
tracked = st.builds(
    TrackedEvent,
    event_id=st.text(min_size=1, max_size=20),
    # Few addresses, in any case: events of one profile share its entry.
    email=st.sampled_from(["ada@example.com", "ADA@example.com", 'bö"b@example.com', "c@x.io"]),
    metric=st.text(min_size=1, max_size=20),
    time=st.just(WHEN),
    properties=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    value=st.none() | st.just(Decimal("24.50")),
    value_currency=st.none() | st.just("EUR"),
)


@given(events=st.lists(tracked, min_size=1, max_size=8))
def test_a_job_is_no_larger_than_the_sizes_counted_for_it(
    client: KlaviyoClient, events: list[TrackedEvent]
) -> None:
    prepared = [client.prepare_event(e) for e in events]

    content, blame = bodies.events_bulk(prepared)

    counted = LIMITS.create_events.wrapping_bytes + sum(p.size for p in prepared)
    assert len(content) <= counted
    if len({e.email.lower() for e in events}) == len(events):
        assert len(content) >= counted - 2 * len(events), "each alone: only the commas spare"
    entries = orjson.loads(content)["data"]["attributes"]["events-bulk-create"]["data"]
    assert [_sent(entry) for entry in entries] == [
        [(events[i].email.lower(), events[i].event_id) for i in group] for group in blame.items
    ]


def _sent(entry: dict[str, Any]) -> list[tuple[str, str]]:
    email = entry["attributes"]["profile"]["data"]["attributes"]["email"].lower()
    resources = entry["attributes"]["events"]["data"]
    return [(email, r["attributes"]["unique_id"]) for r in resources]
