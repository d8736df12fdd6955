"""Provider faults, seen from outside: retries, Retry-After, dead letters (on either
provider's event tracking), order (Klaviyo's consent jobs)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from marketing.v1 import service_pb2 as pb

from dispatcher.sandbox import Sandbox
from tests.builders import product_viewed
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.system.provider_state import KLAVIYO_ONLY, SystemProvider, mentions


def _status(system: ServiceHarness, event_id: str) -> str | None:
    return system.scalar("SELECT status FROM marketing_event_log WHERE id = :id", id=event_id)


def _at(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["received_at"])


def _mentions(record: dict[str, Any], text: str) -> bool:
    return text in json.dumps(record["body"])


def _track(system: ServiceHarness) -> str:
    """A tracked event (not an order: ActiveCampaign takes those elsewhere); its id."""
    event = product_viewed(unique_email())
    return system.stub.TrackEvent(pb.TrackEventRequest(event=event)).event_id


def _event_rejections(provider: SystemProvider, status: int) -> list[dict[str, Any]]:
    return [
        r
        for r in provider.rejections()
        if r["status"] == status and r["path"].startswith(provider.event_path)
    ]


def test_503_then_success_is_delivered_once_after_the_first_backoff(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    provider.add_fault(path=provider.event_path, status=503, times=1)
    event_id = _track(system)
    assert_eventually(lambda: _status(system, event_id) == "COMPLETED")
    assert provider.event_counts()[event_id] == 1
    (rejected,) = _event_rejections(provider, 503)
    accepted = [r for r in provider.requests() if mentions(r, event_id)]
    assert len(accepted) == 1
    assert (_at(accepted[0]) - _at(rejected)).total_seconds() >= 1.0, "seed's first backoff step"


def test_429_retry_after_is_honoured(system: ServiceHarness, provider: SystemProvider) -> None:
    provider.add_fault(path=provider.event_path, status=429, times=1, retry_after=3)
    event_id = _track(system)
    assert_eventually(lambda: _status(system, event_id) == "COMPLETED")
    (throttled,) = _event_rejections(provider, 429)
    later = [r for r in provider.requests() if r["path"].startswith(provider.event_path)]
    assert later, "delivered after the throttle"
    assert min((_at(r) - _at(throttled)).total_seconds() for r in later) >= 3.0


def test_permanent_failure_is_dead_lettered_and_can_be_retried(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    provider.add_fault(path=provider.event_path, status=400, times=1, code="invalid")
    event_id = _track(system)
    assert_eventually(lambda: _status(system, event_id) == "FAILED")
    failed = system.stub.ListFailedDeliveries(pb.ListFailedDeliveriesRequest(page_size=1000))
    (mine,) = [f for f in failed.failed_deliveries if f.event_id == event_id]
    assert mine.kind == "event.tracked" and mine.error and mine.attempts == 1
    assert system.stub.GetQueueStats(pb.GetQueueStatsRequest()).failed >= 1

    retried = system.stub.RetryFailedDeliveries(pb.RetryFailedDeliveriesRequest(names=[mine.name]))
    assert retried.retried == 1
    assert_eventually(lambda: _status(system, event_id) == "COMPLETED")
    assert provider.event_counts()[event_id] == 1
    after = system.stub.ListFailedDeliveries(pb.ListFailedDeliveriesRequest(page_size=1000))
    assert mine.name not in {f.name for f in after.failed_deliveries}


def _final_subscription_state(provider: Sandbox, email: str) -> str | None:
    state = None
    for r in sorted(provider.requests(), key=lambda r: r["seq"]):
        if not _mentions(r, email):
            continue
        if r["path"] == "/api/profile-subscription-bulk-create-jobs":
            state = "SUBSCRIBED"
        elif r["path"] in (
            "/api/profile-subscription-bulk-delete-jobs",
            "/api/profile-suppression-bulk-create-jobs",
        ):
            state = "UNSUBSCRIBED"
    return state


@KLAVIYO_ONLY  # Klaviyo's subscription and suppression jobs
def test_unsubscribe_right_after_subscribe_ends_unsubscribed(
    system: ServiceHarness, klaviyo: Sandbox
) -> None:
    provider = klaviyo
    provider.add_fault(path="/api/profile-subscription", status=503, times=2)
    email = unique_email()
    system.stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="footer"))
    system.stub.Unsubscribe(pb.UnsubscribeRequest(email=email, reason="changed my mind"))
    suppressed = assert_eventually(
        lambda: [
            r
            for r in provider.requests("/api/profile-suppression-bulk-create-jobs")
            if _mentions(r, email)
        ]
    )
    assert suppressed
    assert _final_subscription_state(provider, email) == "UNSUBSCRIBED"
