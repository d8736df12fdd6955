"""The sandboxes' webhook sender on its own: batches of at most `max_batch` events per webhook,
sent from its thread to a real receiver; retries as its policy says; nothing for a webhook that
is gone; nothing pending after `drop_pending`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from dispatcher.sandbox.common.webhooks import (
    DeliveryLog,
    Outgoing,
    Policy,
    Request,
    Target,
    WebhookSender,
)
from tests.dispatcher.sandbox.receiver import Receiver, running_receiver

NOW = 1_800_000_000.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def encode(target: Target, items: Sequence[Outgoing], sent_at: float) -> Request:
    body = json.dumps({"to": target.webhook_id, "items": [i.content for i in items]}).encode()
    return Request(body, {"Content-Type": "application/json"})


def sender(receiver: Receiver, policy: Policy, known: set[str] | None = None) -> WebhookSender:
    def resolve(webhook_id: str) -> Target | None:
        if known is not None and webhook_id not in known:
            return None
        return Target(webhook_id, f"{receiver.url}/{webhook_id}")

    return WebhookSender(policy, encode, resolve, clock=lambda: NOW)


def items(count: int, start: int = 0) -> list[Outgoing]:
    return [Outgoing(f"e{n}", n) for n in range(start, start + count)]


def test_events_for_one_webhook_go_in_batches_of_at_most_max_batch(receiver: Receiver) -> None:
    sending = sender(receiver, Policy(batch_s=0.2, max_batch=100))
    try:
        sending.submit("a", items(150))
        sending.submit("b", items(2))
        sending.submit("a", items(100, start=150))
        assert sending.wait_idle(10)
    finally:
        sending.close()

    batches = [(r.path, len(json.loads(r.body)["items"])) for r in receiver.requests()]
    assert sorted(batches) == [("/a", 50), ("/a", 100), ("/a", 100), ("/b", 2)]
    sent = sorted(n for r in receiver.requests() for n in json.loads(r.body)["items"])
    assert sent == sorted([*range(250), 0, 1])
    assert sum(len(e["external_ids"]) for e in sending.log.entries()) == 252
    assert {e["sent_at"] for e in sending.log.entries()} == {"2027-01-15T08:00:00.000000+00:00"}


def test_a_policy_of_one_attempt_never_retries(receiver: Receiver) -> None:
    receiver.answer(500)
    sending = sender(receiver, Policy())
    try:
        sending.submit("a", items(1))
        assert sending.wait_idle(10)
    finally:
        sending.close()

    assert [(e["attempt"], e["status"]) for e in sending.log.entries()] == [(1, 500)]


def test_retries_stop_at_max_attempts(receiver: Receiver) -> None:
    receiver.answer(500, 502, 504, 500)
    sending = sender(receiver, Policy(max_attempts=3, backoff_s=0.01))
    try:
        sending.submit("a", items(1))
        assert sending.wait_idle(10)
    finally:
        sending.close()

    assert [(e["attempt"], e["status"]) for e in sending.log.entries()] == [
        (1, 500),
        (2, 502),
        (3, 504),
    ]


def test_nothing_goes_to_a_webhook_that_is_gone(receiver: Receiver) -> None:
    sending = sender(receiver, Policy(), known={"a"})
    try:
        sending.submit("gone", items(1))
        sending.submit("a", items(1))
        assert sending.wait_idle(10)
    finally:
        sending.close()

    assert [r.path for r in receiver.requests()] == ["/a"]


def test_dropped_events_and_retries_are_not_sent(receiver: Receiver) -> None:
    receiver.answer(500)
    sending = sender(receiver, Policy(batch_s=5.0, max_attempts=2, backoff_s=5.0))
    try:
        sending.submit("a", items(1))
        sending.submit("b", items(1))
        sending.drop_pending()
        assert sending.wait_idle(1)
    finally:
        sending.close()

    assert receiver.requests() == []


def test_a_policy_needs_sensible_numbers() -> None:
    for bad in ({"max_batch": 0}, {"max_attempts": 0}, {"batch_s": -1.0}, {"backoff_s": -1.0}):
        with pytest.raises(ValueError):
            Policy(**bad)


def test_a_long_body_is_logged_compressed_and_shown_as_sent() -> None:
    log = DeliveryLog()
    long_body = json.dumps({"items": [{"n": n} for n in range(2_000)]})
    log.add({"webhook": "a", "body": long_body})
    log.add({"webhook": "b", "body": "short"})

    assert [e["body"] for e in log.entries()] == [long_body, "short"]
    assert [e["seq"] for e in log.entries("b")] == [2]


def test_the_backlog_counts_the_events_waiting_to_go(receiver: Receiver) -> None:
    sending = sender(receiver, Policy(batch_s=30, max_batch=100))  # nothing due for 30 s
    try:
        sending.submit("a", items(150))  # a full batch ready, 50 waiting for more
        sending.submit("b", items(3))
        waiting = sending.backlog()
    finally:
        sending.close()

    assert waiting in (153, 53)  # the full batch may have gone already
