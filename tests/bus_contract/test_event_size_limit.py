"""The largest event the service accepts is one Klaviyo takes: the payload
limit leaves room for the request body around it (metric, profile, time, value
and unique_id), at their longest, as a single event and as a one-event bulk job;
and the events worker, counting it as the client prepares it, sends it in a job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from marketing.v1 import event_pb2
from marketing_runtime.envelope import parse_delivery, serialized_events
from marketing_runtime.timestamps import to_timestamp

from dispatcher.delivery.translate import tracked_event
from dispatcher.providers.klaviyo import bodies
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.providers.klaviyo.limits import LIMITS
from dispatcher.sandbox import Sandbox
from service.common.validation import MAX_EVENT_BYTES, MAX_STRING_BYTES, normalize_email
from service.errors import InvalidArgumentError, Violations
from service.events.event_log import EventRecord
from service.events.handlers import event_input
from service.events.rules import validate_event
from tests.dispatcher.helpers import API_KEY, headers

NOW = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)
# Each field of the wrapper at the longest validation lets it be.
LONGEST_EMAIL = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 61
LONGEST_NAME = "n" * 127
LONGEST_EVENT_ID = '"' * 128  # printable ASCII, and each one escaped in JSON
STRING = 100_000


def _event(payload_bytes: int) -> event_pb2.Event:
    """A custom event with every wrapper field at its longest and a payload of
    exactly `payload_bytes` bytes as the service encodes it."""
    event = event_pb2.Event(email=LONGEST_EMAIL, event_id=LONGEST_EVENT_ID)
    event.occur_time.FromDatetime(NOW)
    event.custom.name = LONGEST_NAME
    value = event.custom.value
    value.currency_code, value.units, value.nanos = "USD", 99_999_999_999, 999_999_999
    properties = {f"p{i:03}": "x" * STRING for i in range(payload_bytes // (STRING + 9))}
    properties["fill"] = ""
    event.custom.properties.update(properties)
    missing = payload_bytes - len(orjson.dumps(event_input(event).payload))
    assert 0 <= missing <= MAX_STRING_BYTES
    event.custom.properties["fill"] = "x" * missing
    return event


def _validated(event: event_pb2.Event) -> bytes:
    v = Violations()
    encoded = validate_event(v, event_input(event), "event.", NOW, timedelta(minutes=5))
    v.raise_if_any()
    return encoded


def test_one_byte_more_than_the_limit_is_refused() -> None:
    assert len(_validated(_event(MAX_EVENT_BYTES))) == MAX_EVENT_BYTES
    with pytest.raises(InvalidArgumentError) as refused:
        _validated(_event(MAX_EVENT_BYTES + 1))
    assert [v.reason for v in refused.value.violations] == ["EVENT_TOO_LARGE"]


@pytest.mark.parametrize("route", ["/api/events", "/api/event-bulk-create-jobs"])
def test_the_largest_event_accepted_is_accepted_by_the_provider(
    sandbox: Sandbox, http: httpx.Client, route: str
) -> None:
    event = _event(MAX_EVENT_BYTES)
    encoded = _validated(event)
    email = normalize_email(event.email)
    record = EventRecord(
        event_id=event.event_id,
        email=email,
        contact_key="k",
        metric=event.custom.name,
        payload=event_input(event).payload,
        occurred_at=NOW,
        payload_json=encoded,
        body_field="custom",
        body=event_input(event).body,
    )
    # As the dispatcher reads it off the bus, prepares it and builds Klaviyo's body.
    (message,) = serialized_events([record.bus_event()], to_timestamp(NOW))
    tracked = tracked_event(parse_delivery(message))
    prepared = KlaviyoClient(API_KEY).prepare_event(tracked)
    if route == "/api/events":
        content = bodies.encode(bodies.event_create(tracked)[0])
    else:
        content = bodies.events_bulk([prepared])[0]
    assert len(content) > MAX_EVENT_BYTES  # the wrapper is there, on top of the payload
    # The worker's count of it is no less than what is sent, and fits one call.
    limits = LIMITS.create_events
    assert len(content) <= limits.wrapping_bytes + prepared.size <= (limits.max_bytes or 0)
    response = http.post(route, content=content, headers=headers())
    assert response.status_code == 202, response.text[:500]
