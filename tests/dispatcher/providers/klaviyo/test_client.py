"""KlaviyoClient against the real sandbox over HTTP: paths, headers, bodies, error translation."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from dispatcher.providers.base import ConsentChange, Profile
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox, start_sandbox
from tests.dispatcher.helpers import API_KEY, create_events, event, with_client

BULK = "/api/event-bulk-create-jobs"
SUBSCRIBE = "/api/profile-subscription-bulk-create-jobs"
UNSUBSCRIBE = "/api/profile-subscription-bulk-delete-jobs"


def only_request(sandbox: Sandbox, path: str) -> dict[str, Any]:
    recorded = sandbox.requests()
    assert [r["path"] for r in recorded] == [path]
    return recorded[0]


# --- accepted operations ---------------------------------------------------------------


def test_upsert_profile_sends_real_headers_and_returns_a_stable_id(sandbox: Sandbox) -> None:
    profile = Profile(
        email="ada@example.com",
        external_id="user-1",
        phone="+447700900123",
        first_name="Ada",
        last_name="Lovelace",
        location="London, UK",
        properties={"tier": "gold"},
    )
    first = with_client(sandbox, lambda c: c.upsert_profile(profile))
    again = with_client(sandbox, lambda c: c.upsert_profile(Profile(email="ADA@example.com")))
    other = with_client(sandbox, lambda c: c.upsert_profile(Profile(email="bob@example.com")))

    assert first == again != other
    recorded = sandbox.requests("/api/profile-import")
    assert recorded[0]["headers"] == {
        "revision": "2026-07-15",
        "content-type": "application/vnd.api+json",
        "accept": "application/vnd.api+json",
        "user-agent": "marketing-automation-dispatcher/0.1",
    }
    assert recorded[0]["body"] == {
        "data": {
            "type": "profile",
            "attributes": {
                "email": "ada@example.com",
                "phone_number": "+447700900123",
                "external_id": "user-1",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "properties": {"tier": "gold", "location": "London, UK"},
            },
        }
    }
    assert recorded[1]["body"]["data"]["attributes"] == {"email": "ADA@example.com"}


def test_one_event_goes_to_the_events_endpoint_with_its_unique_id(sandbox: Sandbox) -> None:
    with_client(sandbox, lambda c: create_events(c, [event("order-1001")]))

    body = only_request(sandbox, "/api/events")["body"]
    assert body == {
        "data": {
            "type": "event",
            "attributes": {
                "properties": {"order_id": "order-1001", "total": 24},
                "metric": {"data": {"type": "metric", "attributes": {"name": "placed_order"}}},
                "time": "2026-11-02T09:30:00+00:00",
                "value": 24.5,
                "value_currency": "EUR",
                "unique_id": "order-1001",
                "profile": {
                    "data": {"type": "profile", "attributes": {"email": "ada@example.com"}}
                },
            },
        }
    }
    assert sandbox.event_counts() == {"order-1001": 1}


def test_events_in_bulk_are_grouped_per_profile(sandbox: Sandbox) -> None:
    events = [
        event("e0", "ada@example.com"),
        event("e1", "bob@example.com", value=None, value_currency=None),
        event("e2", "ADA@example.com"),
    ]
    with_client(sandbox, lambda c: create_events(c, events))

    job = only_request(sandbox, BULK)["body"]["data"]
    assert job["type"] == "event-bulk-create-job"
    entries = job["attributes"]["events-bulk-create"]["data"]
    assert [e["type"] for e in entries] == ["event-bulk-create"] * 2
    assert [e["attributes"]["profile"]["data"]["attributes"]["email"] for e in entries] == [
        "ada@example.com",
        "bob@example.com",
    ]
    grouped = [
        [ev["attributes"]["unique_id"] for ev in e["attributes"]["events"]["data"]] for e in entries
    ]
    assert grouped == [["e0", "e2"], ["e1"]]
    bob_event = entries[1]["attributes"]["events"]["data"][0]
    assert bob_event["type"] == "event"
    assert "value" not in bob_event["attributes"]
    assert "profile" not in bob_event["attributes"]
    assert sandbox.event_counts() == {"e0": 1, "e1": 1, "e2": 1}


def test_full_batches_are_accepted_and_the_index_counts_each_submission() -> None:
    # Ten bulk jobs at once is Klaviyo's burst (10/s); the redelivery goes in the next second
    # of the sandbox's (virtual) clock.
    now = [1_800_000_000.0]
    batches = [
        [event(f"b{b}-{i}", f"user{i % 97}@example.com") for i in range(1000)] for b in range(10)
    ]

    async def send(client: KlaviyoClient) -> None:
        await asyncio.gather(*(create_events(client, batch) for batch in batches))
        now[0] += 1
        await create_events(client, batches[0])  # a redelivery of the first batch

    with start_sandbox(api_key=API_KEY, clock=lambda: now[0]) as sandbox:
        with_client(sandbox, send)

    assert len(sandbox.requests(BULK)) == 11
    counts = sandbox.event_counts()
    assert len(counts) == 10_000
    assert {counts[f"b0-{i}"] for i in range(1000)} == {2}
    assert {n for uid, n in counts.items() if not uid.startswith("b0-")} == {1}


def test_subscribe_grants_email_and_sms_and_joins_the_list(sandbox: Sandbox) -> None:
    changes = [
        ConsentChange(
            email="ada@example.com", phone="+447700900123", email_marketing=True, sms_marketing=True
        ),
        ConsentChange(email="bob@example.com", email_marketing=True, sms_marketing=True),
        ConsentChange(email="eve@example.com", email_marketing=None),
    ]
    with_client(sandbox, lambda c: c.subscribe(changes, "LstA1"))

    job = only_request(sandbox, SUBSCRIBE)["body"]["data"]
    assert job["type"] == "profile-subscription-bulk-create-job"
    assert job["relationships"] == {"list": {"data": {"type": "list", "id": "LstA1"}}}
    subscribed = {"marketing": {"consent": "SUBSCRIBED"}}
    assert job["attributes"] == {
        "profiles": {
            "data": [
                {
                    "type": "profile",
                    "attributes": {
                        "email": "ada@example.com",
                        "phone_number": "+447700900123",
                        "subscriptions": {"email": subscribed, "sms": subscribed},
                    },
                },
                {  # no phone: no SMS consent
                    "type": "profile",
                    "attributes": {
                        "email": "bob@example.com",
                        "subscriptions": {"email": subscribed},
                    },
                },
            ]
        }
    }


def test_subscribe_without_a_list_has_no_relationship(sandbox: Sandbox) -> None:
    change = ConsentChange(email="ada@example.com", email_marketing=True)
    with_client(sandbox, lambda c: c.subscribe([change], None))

    assert "relationships" not in only_request(sandbox, SUBSCRIBE)["body"]["data"]


def test_unsubscribe_withdraws_only_channels_set_false(sandbox: Sandbox) -> None:
    changes = [
        ConsentChange(email="ada@example.com", email_marketing=False, sms_marketing=None),
        ConsentChange(email="bob@example.com", phone="+15005550006", sms_marketing=False),
        ConsentChange(email="eve@example.com", email_marketing=True),
    ]
    with_client(sandbox, lambda c: c.unsubscribe(changes))

    job = only_request(sandbox, UNSUBSCRIBE)["body"]["data"]
    assert job["type"] == "profile-subscription-bulk-delete-job"
    unsubscribed = {"marketing": {"consent": "UNSUBSCRIBED"}}
    profiles = [p["attributes"] for p in job["attributes"]["profiles"]["data"]]
    assert profiles == [
        {"email": "ada@example.com", "subscriptions": {"email": unsubscribed}},
        {
            "email": "bob@example.com",
            "phone_number": "+15005550006",
            "subscriptions": {"sms": unsubscribed},
        },
    ]


def test_suppress_and_erasure(sandbox: Sandbox) -> None:
    async def send(client: KlaviyoClient) -> None:
        await client.suppress(["ada@example.com", "bob@example.com"])
        await client.request_erasure("ada@example.com")

    with_client(sandbox, send)

    suppression, erasure = (r["body"]["data"] for r in sandbox.requests())
    assert suppression == {
        "type": "profile-suppression-bulk-create-job",
        "attributes": {
            "profiles": {
                "data": [
                    {"type": "profile", "attributes": {"email": "ada@example.com"}},
                    {"type": "profile", "attributes": {"email": "bob@example.com"}},
                ]
            }
        },
    }
    assert erasure == {
        "type": "data-privacy-deletion-job",
        "attributes": {
            "profile": {"data": {"type": "profile", "attributes": {"email": "ada@example.com"}}}
        },
    }


def test_nothing_to_send_sends_nothing(sandbox: Sandbox) -> None:
    async def send(client: KlaviyoClient) -> None:
        await create_events(client, [])
        await client.subscribe([ConsentChange(email="ada@example.com")], "LstA1")
        await client.unsubscribe([ConsentChange(email="ada@example.com", email_marketing=True)])
        await client.suppress([])

    with_client(sandbox, send)

    assert sandbox.requests() == []
    assert sandbox.rejections() == []


def test_oversized_batches_are_refused_before_sending(sandbox: Sandbox) -> None:
    too_many = [ConsentChange(email=f"u{i}@example.com", email_marketing=False) for i in range(101)]

    with pytest.raises(ValueError, match="at most 100"):
        with_client(sandbox, lambda c: c.unsubscribe(too_many))
    with pytest.raises(ValueError, match="at most 1000"):
        with_client(sandbox, lambda c: create_events(c, [event(f"e{i}") for i in range(1001)]))
    assert sandbox.requests() == []


# --- retryable failures ----------------------------------------------------------------


def test_throttling_is_retryable_with_the_retry_after(sandbox: Sandbox) -> None:
    sandbox.add_fault(path=BULK, status=429, retry_after=3)

    with pytest.raises(RetryableProviderError) as caught:
        with_client(sandbox, lambda c: create_events(c, [event("e0"), event("e1")]))

    assert caught.value.status == 429
    assert caught.value.code == "throttled"
    assert caught.value.retry_after == 3
    assert sandbox.requests() == []
    assert sandbox.event_counts() == {}


@pytest.mark.parametrize(
    ("status", "code"),
    # JSON:API bodies for 500/503; a CDN's HTML page for 502/504, which must be tolerated
    [(500, "error"), (502, ""), (503, "service_unavailable"), (504, "")],
)
def test_server_errors_are_retryable(sandbox: Sandbox, status: int, code: str) -> None:
    sandbox.add_fault(status=status)

    with pytest.raises(RetryableProviderError) as caught:
        with_client(sandbox, lambda c: c.suppress(["ada@example.com"]))

    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.retry_after is None
    assert sandbox.requests() == []


def test_server_error_honours_retry_after(sandbox: Sandbox) -> None:
    sandbox.add_fault(status=503, retry_after=7)

    with pytest.raises(RetryableProviderError) as caught:
        with_client(sandbox, lambda c: c.request_erasure("ada@example.com"))

    assert (caught.value.status, caught.value.code) == (503, "service_unavailable")
    assert caught.value.retry_after == 7


def test_retrying_after_a_fault_delivers_once(sandbox: Sandbox) -> None:
    sandbox.add_fault(path=BULK, status=503, times=2)
    batch = [event("e0"), event("e1", "bob@example.com")]

    async def deliver(client: KlaviyoClient) -> int:
        for attempt in range(1, 4):
            try:
                await create_events(client, batch)
            except RetryableProviderError:
                continue
            return attempt
        raise AssertionError("not delivered")

    assert with_client(sandbox, deliver) == 3
    assert sandbox.event_counts() == {"e0": 1, "e1": 1}
    assert [r["status"] for r in sandbox.rejections()] == [503, 503]


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def run() -> None:
        async with KlaviyoClient(API_KEY, base_url=f"http://127.0.0.1:{port}") as client:
            await create_events(client, [event("e0")])

    with pytest.raises(RetryableProviderError, match="ConnectError") as caught:
        asyncio.run(run())
    assert caught.value.status is None


def test_a_timeout_is_retryable(sandbox: Sandbox) -> None:
    sandbox.add_fault(path="/api/events", latency_ms=30_000)

    with pytest.raises(RetryableProviderError, match="ReadTimeout") as caught:
        with_client(sandbox, lambda c: create_events(c, [event("e0")]), timeout_s=0.2)

    assert caught.value.status is None
    assert caught.value.retry_after is None


# --- permanent failures ----------------------------------------------------------------


def test_a_wrong_api_key_is_permanent(sandbox: Sandbox) -> None:
    async def run() -> None:
        async with KlaviyoClient("pk_wrong", base_url=sandbox.base_url) as client:
            await client.request_erasure("ada@example.com")

    with pytest.raises(PermanentProviderError) as caught:
        asyncio.run(run())

    assert (caught.value.status, caught.value.code) == (401, "not_authenticated")
    assert caught.value.item_indexes == ()


def test_a_missing_revision_is_permanent(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        with_client(sandbox, lambda c: c.request_erasure("ada@example.com"), revision="")

    assert (caught.value.status, caught.value.code) == (400, "invalid")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 415, 422])
def test_client_errors_are_permanent(sandbox: Sandbox, status: int) -> None:
    sandbox.add_fault(status=status, retry_after=5)

    with pytest.raises(PermanentProviderError) as caught:
        with_client(sandbox, lambda c: c.upsert_profile(Profile(email="ada@example.com")))

    assert caught.value.status == status
    assert caught.value.code
    assert caught.value.item_indexes == ()


def test_an_invalid_event_in_a_bulk_names_its_index(sandbox: Sandbox) -> None:
    events = [event("e0"), event("e1", "bob@example.com"), event("e2", metric="m" * 128)]

    with pytest.raises(PermanentProviderError) as caught:
        with_client(sandbox, lambda c: create_events(c, events))

    assert (caught.value.status, caught.value.code) == (400, "invalid")
    assert caught.value.item_indexes == (2,)
    assert sandbox.requests() == []
    assert sandbox.event_counts() == {}


@pytest.mark.parametrize(
    ("pointer", "blamed"),
    [
        (
            "/data/attributes/events-bulk-create/data/0/attributes/events/data/1/attributes/time",
            (2,),
        ),
        ("/data/attributes/events-bulk-create/data/0/attributes/profile/data", (0, 2)),
        ("/data/attributes/events-bulk-create/data/2", (3,)),
        ("/data/attributes/events-bulk-create/data/9", ()),
        ("/data/attributes/events-bulk-create/data", ()),
        ("/data/type", ()),
    ],
)
def test_a_pointer_maps_back_to_the_callers_events(
    sandbox: Sandbox, pointer: str, blamed: tuple[int, ...]
) -> None:
    sandbox.add_fault(path=BULK, status=400, pointer=pointer)
    events = [
        event("e0"),
        event("e1", "bob@example.com"),
        event("e2"),
        event("e3", "c@example.com"),
    ]

    with pytest.raises(PermanentProviderError) as caught:
        with_client(sandbox, lambda c: create_events(c, events))

    assert caught.value.item_indexes == blamed


def test_a_single_event_error_blames_that_event(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        with_client(sandbox, lambda c: create_events(c, [event("e0", value_currency="EURO")]))

    assert caught.value.item_indexes == (0,)


def test_an_invalid_profile_in_a_subscription_job_names_the_change(sandbox: Sandbox) -> None:
    changes = [
        ConsentChange(email="ada@example.com", email_marketing=True),
        ConsentChange(email="skipped@example.com"),  # grants nothing: not sent
        ConsentChange(email="not-an-email", email_marketing=True),
    ]

    with pytest.raises(PermanentProviderError) as caught:
        with_client(sandbox, lambda c: c.subscribe(changes, None))

    assert caught.value.item_indexes == (2,)
    assert "/data/attributes/profiles/data/1/attributes/email" in str(caught.value)


def test_an_invalid_address_in_a_suppression_names_it(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        with_client(sandbox, lambda c: c.suppress(["ada@example.com", "bob at example.com"]))

    assert caught.value.item_indexes == (1,)


def test_an_unserializable_property_is_permanent(sandbox: Sandbox) -> None:
    broken = event("e0", properties={"when": object()})

    with pytest.raises(PermanentProviderError) as caught:
        with_client(sandbox, lambda c: create_events(c, [broken]))

    assert caught.value.code == "unserializable"
    assert sandbox.requests() == []
