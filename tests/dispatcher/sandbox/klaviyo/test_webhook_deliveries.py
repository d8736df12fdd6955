"""What the Klaviyo sandbox sends its webhooks: received_email for each flow email sent and each
engagement told through POST /_sandbox/engagement (after its effect on the account), signed
with the webhook's secret, batched, retried with the same external ids, to the webhooks
subscribed to the topic only; every attempt in GET /_sandbox/webhook-deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from marketing.bus.v1 import bus_pb2

from dispatcher.sandbox import Sandbox, start_sandbox
from dispatcher.webhooks import klaviyo as receiving
from tests.dispatcher.helpers import EpochClock, headers
from tests.dispatcher.sandbox.receiver import Received, Receiver, running_receiver

START = 1_800_000_000.0
EMAIL = "ada@example.com"
SECRET = "s3cret-for-tests"
RECEIVED, OPENED = "event:klaviyo.received_email", "event:klaviyo.opened_email"
WELCOME = {
    "name": "Welcome",
    "trigger_metric": "Started Welcome",
    "messages": [{"delay_s": 0, "subject": "Welcome"}, {"delay_s": 3600, "subject": "Later"}],
}


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(START)


@pytest.fixture
def sandbox(clock: EpochClock) -> Iterator[Sandbox]:
    with start_sandbox(clock=clock, webhook_backoff_s=0.05) as running:
        yield running


@pytest.fixture
def http(sandbox: Sandbox, clock: EpochClock) -> Iterator[httpx.Client]:
    """Klaviyo's headers; the clock moves 4 s before each call (webhooks allow 1/s, 15/m)."""

    def tick(request: httpx.Request) -> None:
        clock.advance(4.0)

    with httpx.Client(
        base_url=sandbox.base_url, headers=headers(), event_hooks={"request": [tick]}, timeout=10
    ) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def register(http: httpx.Client, receiver: Receiver | str, *topics: str, path: str = "/k") -> str:
    """A webhook of `topics` (received_email when none) to the receiver (or a URL)."""
    url = receiver if isinstance(receiver, str) else receiver.url + path
    data = [{"type": "webhook-topic", "id": topic} for topic in topics or (RECEIVED,)]
    body = {
        "data": {
            "type": "webhook",
            "attributes": {"name": "t", "endpoint_url": url, "secret_key": SECRET},
            "relationships": {"webhook-topics": {"data": data}},
        }
    }
    webhook_id: str = ok(http.post("/api/webhooks", json=body), 201)["data"]["id"]
    return webhook_id


def trigger(http: httpx.Client, flow: dict[str, Any] = WELCOME, email: str = EMAIL) -> None:
    ok(http.post("/_sandbox/flows", json=flow), 201)
    attributes = {
        "properties": {},
        "metric": {"data": {"type": "metric", "attributes": {"name": flow["trigger_metric"]}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": email}}},
    }
    ok(http.post("/api/events", json={"data": {"type": "event", "attributes": attributes}}), 202)


def engage(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    answer: dict[str, Any] = ok(http.post("/_sandbox/engagement", json=fields), 202)
    return answer


def items(request: Received) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(request.body)["data"]
    return found


def message_ids(request: Received) -> list[str]:
    events = [item["payload"]["data"] for item in items(request)]
    return [event["attributes"]["event_properties"]["$message"] for event in events]


def sent_messages(http: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok(http.get("/_sandbox/messages", params={"status": "sent"}), 200)
    return found


def test_a_flow_email_sent_is_reported_as_received_email_signed_with_the_secret(
    http: httpx.Client, receiver: Receiver, sandbox: Sandbox, clock: EpochClock
) -> None:
    webhook_id = register(http, receiver)

    trigger(http)
    arrived = clock.now  # the trigger's: its first message is due then, and sent

    (request,) = receiver.wait_for(1)
    (message,) = sent_messages(http)
    timestamp = request.headers["klaviyo-timestamp"]
    expected = hmac.new(SECRET.encode(), request.body + timestamp.encode(), hashlib.sha256)
    assert request.headers["klaviyo-signature"] == expected.hexdigest()
    assert request.headers["klaviyo-webhook-id"] == webhook_id
    assert request.headers["content-type"] == "application/json"
    # Sent now by the wall clock, whatever the sandbox's clock says (receivers
    # refuse a timestamp outside their replay window).
    assert abs((datetime.fromisoformat(timestamp) - datetime.now(UTC)).total_seconds()) < 60
    assert arrived
    document = json.loads(request.body)
    assert document["meta"] == {
        "klaviyo_account_id": "SbxAcc",
        "klaviyo_webhook_id": webhook_id,
        "timestamp": timestamp,
    }
    (item,) = document["data"]
    assert item["topic"] == RECEIVED
    event, (profile,) = item["payload"]["data"], item["payload"]["included"]
    assert event["id"] == item["external_id"] and event["type"] == "event"
    assert event["attributes"]["event_properties"] == {
        "$message": str(message["id"]),
        "$flow": "Welcome",
    }
    assert event["attributes"]["timestamp"] == int(arrived)
    assert event["relationships"]["profile"]["data"] == {"type": "profile", "id": profile["id"]}
    assert profile["attributes"] == {"email": EMAIL, "phone_number": None}


def test_the_dispatchers_receiver_reads_what_the_sandbox_sends(
    http: httpx.Client, receiver: Receiver, sandbox: Sandbox, clock: EpochClock
) -> None:
    register(http, receiver, RECEIVED, OPENED)
    trigger(http)
    (sent,) = sent_messages(http)
    engage(http, email=EMAIL, type="opened", campaign_id="01JCAMPAIGN")

    assert sandbox.webhooks_idle()  # one request or two: within 0.2 s they share one

    engagements = []
    now = datetime.now(UTC)  # the receiver checks the wall clock, as the sandbox signs by it
    for request in receiver.requests():
        given = httpx.Headers(request.headers)  # names in any case, as the receiver's
        webhook_id = receiving.verify(request.body, given, secret=SECRET, now=now, window_s=300)
        engagements += receiving.parse(request.body, webhook_id)
    delivered, opened = engagements
    assert (delivered.type, delivered.email) == (bus_pb2.ENGAGEMENT_TYPE_DELIVERED, EMAIL)
    assert (delivered.message_id, delivered.flow_id) == (str(sent["id"]), "Welcome")
    assert (opened.type, opened.campaign_id) == (bus_pb2.ENGAGEMENT_TYPE_OPENED, "01JCAMPAIGN")
    assert opened.message_id == str(sent["id"]), "the person's last email, when none is named"


def test_events_pending_together_go_in_one_request(
    http: httpx.Client, receiver: Receiver, sandbox: Sandbox
) -> None:
    register(http, receiver)
    messages = [{"delay_s": 0, "subject": s} for s in ("one", "two", "three")]

    trigger(http, WELCOME | {"messages": messages})

    assert sandbox.webhooks_idle()
    (request,) = receiver.requests()
    assert message_ids(request) == [str(m["id"]) for m in sent_messages(http)]
    (attempt,) = sandbox.webhook_deliveries()
    assert attempt["external_ids"] == [i["external_id"] for i in items(request)]


def test_a_delivery_answered_500_is_sent_again_with_the_same_events(
    http: httpx.Client, receiver: Receiver, sandbox: Sandbox
) -> None:
    webhook_id = register(http, receiver)
    receiver.answer(500, 503)

    trigger(http)

    first, second, third = receiver.wait_for(3)
    assert items(first) == items(second) == items(third)
    assert sandbox.webhooks_idle()
    attempts = ok(http.get("/_sandbox/webhook-deliveries"), 200)
    assert [(a["attempt"], a["status"], a["webhook"]) for a in attempts] == [
        (1, 500, webhook_id),
        (2, 503, webhook_id),
        (3, 200, webhook_id),
    ]
    assert attempts[0]["external_ids"] == attempts[2]["external_ids"]
    assert attempts[0]["answer"] == "ok" and attempts[0]["url"] == receiver.url + "/k"


def test_a_delivery_no_one_answers_is_tried_four_times_in_all(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    with running_receiver() as gone:
        url = gone.url  # a port nothing listens on once closed
    register(http, url)

    trigger(http)

    assert sandbox.webhooks_idle()
    attempts = sandbox.webhook_deliveries()
    assert [(a["attempt"], a["status"]) for a in attempts] == [(n, None) for n in (1, 2, 3, 4)]
    assert all(a["error"].startswith("ConnectError") for a in attempts)


def test_only_the_webhooks_subscribed_to_a_topic_get_it(
    http: httpx.Client, receiver: Receiver, sandbox: Sandbox
) -> None:
    opens = register(http, receiver, OPENED, path="/opens")
    sends = register(http, receiver, RECEIVED, path="/sends")

    trigger(http)
    assert sandbox.webhooks_idle()
    answered = engage(http, email=EMAIL, type="opened")
    assert sandbox.webhooks_idle()

    assert [(r.path, items(r)[0]["topic"]) for r in receiver.requests()] == [
        ("/sends", RECEIVED),
        ("/opens", OPENED),
    ]
    assert answered["webhooks"] == [opens] and sends not in answered["webhooks"]
    assert answered["external_ids"] == [items(receiver.requests()[1])[0]["external_id"]]
    assert engage(http, email=EMAIL, type="clicked", url="https://shop.example/p") == {
        "external_ids": [],
        "webhooks": [],
    }


def test_a_deleted_webhook_gets_nothing_more(
    http: httpx.Client, receiver: Receiver, sandbox: Sandbox
) -> None:
    webhook_id = register(http, receiver, OPENED)
    ok(http.delete(f"/api/webhooks/{webhook_id}"), 204)

    assert engage(http, email=EMAIL, type="opened")["external_ids"] == []
    assert sandbox.webhooks_idle() and receiver.requests() == []


def consent(sandbox: Sandbox) -> dict[str, Any]:
    (profile,) = sandbox.profiles(EMAIL)
    return {
        "email": profile["subscriptions"]["email"]["marketing"]["consent"],
        "sms": profile["subscriptions"]["sms"]["marketing"]["consent"],
        "suppression": sorted(
            s["reason"] for s in profile["subscriptions"]["email"]["marketing"]["suppression"]
        ),
    }


ALL_TOPICS = (
    RECEIVED,
    OPENED,
    "event:klaviyo.clicked_email",
    "event:klaviyo.bounced_email",
    "event:klaviyo.marked_email_as_spam",
    "event:klaviyo.unsubscribed_from_email_marketing",
    "event:klaviyo.unsubscribed_from_sms_marketing",
)


@pytest.mark.parametrize(
    ("fields", "topic", "properties", "state"),
    [
        ({"type": "delivered"}, RECEIVED, {},
         {"email": "NEVER_SUBSCRIBED", "sms": "NEVER_SUBSCRIBED", "suppression": []}),
        ({"type": "clicked", "url": "https://shop.example/p"}, "event:klaviyo.clicked_email",
         {"URL": "https://shop.example/p"},
         {"email": "NEVER_SUBSCRIBED", "sms": "NEVER_SUBSCRIBED", "suppression": []}),
        ({"type": "bounced", "bounce_type": "soft"}, "event:klaviyo.bounced_email",
         {"Bounce Type": "soft"},
         {"email": "NEVER_SUBSCRIBED", "sms": "NEVER_SUBSCRIBED", "suppression": []}),
        ({"type": "bounced"}, "event:klaviyo.bounced_email", {"Bounce Type": "hard"},
         {"email": "NEVER_SUBSCRIBED", "sms": "NEVER_SUBSCRIBED", "suppression": ["HARD_BOUNCE"]}),
        ({"type": "spam"}, "event:klaviyo.marked_email_as_spam", {},
         {"email": "UNSUBSCRIBED", "sms": "NEVER_SUBSCRIBED", "suppression": ["SPAM_COMPLAINT"]}),
        ({"type": "unsubscribed", "reason": "too many"},
         "event:klaviyo.unsubscribed_from_email_marketing", {"Reason": "too many"},
         {"email": "UNSUBSCRIBED", "sms": "NEVER_SUBSCRIBED", "suppression": ["UNSUBSCRIBE"]}),
        ({"type": "sms_unsubscribed", "phone": "+15005550006"},
         "event:klaviyo.unsubscribed_from_sms_marketing", {},
         {"email": "NEVER_SUBSCRIBED", "sms": "UNSUBSCRIBED", "suppression": []}),
    ],
)  # fmt: skip
def test_an_engagement_changes_the_account_where_klaviyo_would_and_is_reported(
    http: httpx.Client,
    receiver: Receiver,
    sandbox: Sandbox,
    fields: dict[str, Any],
    topic: str,
    properties: dict[str, Any],
    state: dict[str, Any],
) -> None:
    register(http, receiver, *ALL_TOPICS)
    sandbox.plant_profile(email=EMAIL)

    answered = engage(http, email=EMAIL, **fields)

    assert consent(sandbox) == state
    (request,) = receiver.wait_for(1)
    (item,) = items(request)
    assert (item["topic"], [item["external_id"]]) == (topic, answered["external_ids"])
    assert item["payload"]["data"]["attributes"]["event_properties"] == properties
    phone = fields.get("phone")
    assert item["payload"]["included"][0]["attributes"] == {"email": EMAIL, "phone_number": phone}


def test_after_an_unsubscribe_the_flows_next_email_is_skipped(
    http: httpx.Client, receiver: Receiver, sandbox: Sandbox
) -> None:
    register(http, receiver)
    trigger(http)
    first, _later = ok(http.get("/_sandbox/messages"), 200)

    engage(http, email=EMAIL, type="unsubscribed", message_id=first["id"])
    sandbox.advance_clock(3600)

    assert sandbox.messages(EMAIL)[1]["status"] == "skipped"
    assert sandbox.messages(EMAIL)[1]["reason"] == "unsubscribed from email marketing"
    assert sandbox.webhooks_idle()
    assert len(receiver.requests()) == 1, "no received_email for the skipped one"


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"email": EMAIL, "type": "liked"}, "type must be one of"),
        ({"type": "opened"}, "email must be"),
        ({"email": EMAIL, "type": "clicked"}, "a click needs its url"),
        ({"email": EMAIL, "type": "bounced", "bounce_type": "medium"}, "bounce_type must be"),
        ({"email": EMAIL, "type": "opened", "bounce_type": "hard"}, "for a bounce only"),
        ({"email": EMAIL, "type": "opened", "message_id": 999}, "no message 999 was sent"),
        ({"email": EMAIL, "type": "sms_unsubscribed"}, "needs a phone"),
        ({"email": EMAIL, "type": "opened", "colour": "red"}, "unknown fields"),
    ],
)
def test_a_bad_engagement_is_400_and_changes_nothing(
    http: httpx.Client, sandbox: Sandbox, fields: dict[str, Any], detail: str
) -> None:
    error = ok(http.post("/_sandbox/engagement", json=fields), 400)["errors"][0]

    assert detail in error["detail"]
    assert sandbox.profiles(EMAIL) == []


def test_the_reset_forgets_webhooks_and_deliveries(
    http: httpx.Client, receiver: Receiver, sandbox: Sandbox
) -> None:
    register(http, receiver)
    trigger(http)
    assert sandbox.webhooks_idle() and sandbox.webhook_deliveries()

    ok(http.delete("/_sandbox/requests"), 204)

    assert ok(http.get("/_sandbox/webhook-deliveries"), 200) == []
    assert ok(http.get("/api/webhooks"), 200)["data"] == []
    trigger(http)
    assert sandbox.webhooks_idle() and len(receiver.requests()) == 1
