"""Klaviyo's limits as shared/PROVIDERS.md documents them, and a consent plan that uses
only operations those limits name, in their order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.providers.base import ConsentChange, ConsentState, Limits, OperationLimits
from dispatcher.providers.klaviyo import bodies
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.providers.klaviyo.limits import EVENTS_JOB_BYTES, LIMITS
from tests.dispatcher.helpers import API_KEY


@pytest.fixture(scope="module")
def client() -> Iterator[KlaviyoClient]:
    made = KlaviyoClient(API_KEY, base_url="http://127.0.0.1:9")  # plans only: never sends
    yield made
    asyncio.run(made.aclose())


def test_the_documented_limits() -> None:
    events = LIMITS.create_events
    assert (events.max_items, events.max_bytes) == (1000, EVENTS_JOB_BYTES) == (1000, 5 * 2**20)
    attributes: dict[str, object] = {"events-bulk-create": {"data": []}}
    job = bodies.encode({"data": {"type": "event-bulk-create-job", "attributes": attributes}})
    assert events.wrapping_bytes == len(job), "the job's body without its events"
    assert {name: limit.max_items for name, limit in LIMITS.consent.items()} == {
        "subscribe": 1000,
        "unsuppress": 100,
        "unsubscribe": 100,
        "suppress": 100,
    }


def test_consent_limits_state_no_bytes() -> None:
    """The contacts worker splits consent calls by their number of items only."""
    with pytest.raises(ValueError, match="number of items"):
        Limits(LIMITS.create_events, {"subscribe": OperationLimits(1000, max_bytes=5 * 2**20)})


state = st.builds(
    ConsentState,
    change=st.builds(
        ConsentChange,
        email=st.sampled_from(["a@example.com", "b@example.com"]),
        phone=st.sampled_from([None, "+15005550006"]),
        email_marketing=st.booleans(),
        sms_marketing=st.booleans(),
    ),
    newsletter_member=st.booleans(),
    suppressed=st.booleans(),
)


@given(states=st.lists(state, max_size=6), list_id=st.sampled_from([None, "LstNews"]))
def test_a_consent_plan_uses_the_operations_the_limits_name_in_their_order(
    client: KlaviyoClient, states: list[ConsentState], list_id: str | None
) -> None:
    calls = client.plan_consent(list(enumerate(states)), list_id)

    order = list(LIMITS.consent)
    positions = [order.index(call.operation) for call in calls]
    assert positions == sorted(positions)
    assert all(call.owners for call in calls), "no call without items"
    for call in calls:
        assert len(set(call.owners)) == len(call.owners), "one item per person and call"
