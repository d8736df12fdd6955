"""Ordering under redelivery, and both stores down at once."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest
from marketing.bus.v1 import bus_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.envelope import MSG_ID_HEADER

from dispatcher.sandbox import Sandbox
from service.common.validation import email_key
from tests.builders import upsert
from tests.bus_helpers import delivery
from tests.harness import ServiceHarness, assert_eventually, error_reason, unique_email
from tests.system.provider_state import KLAVIYO_ONLY, SystemProvider, order_event


def _requests_for(provider: Sandbox, email: str, path: str) -> list[dict[str, object]]:
    return [r for r in provider.requests(path) if email in json.dumps(r["body"])]


@KLAVIYO_ONLY  # it counts Klaviyo's subscription jobs
def test_a_stale_consent_change_is_never_applied(system: ServiceHarness, klaviyo: Sandbox) -> None:
    """A subscribe redelivered after a newer unsubscribe was applied (as after a
    failover) is fenced off: the provider never sees it."""
    provider = klaviyo
    email = unique_email()
    system.stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="form"))
    system.stub.Unsubscribe(pb.UnsubscribeRequest(email=email))
    assert_eventually(
        lambda: _requests_for(provider, email, "/api/profile-suppression-bulk-create-jobs")
    )
    subscribes_before = len(
        _requests_for(provider, email, "/api/profile-subscription-bulk-create-jobs")
    )

    stale = delivery(
        id=str(uuid.uuid4()),
        kind=bus_pb2.KIND_NEWSLETTER_SUBSCRIBED,
        contact_key=email_key(email),
        sequence=1,
        created=utc_now(),
        payload=bus_pb2.NewsletterSubscribed(
            state=bus_pb2.ConsentState(
                email=email, opt_in=bus_pb2.OptIn(email=True), newsletter_member=True
            )
        ),
    )
    js = system.bus.js if system.bus else None
    assert js is not None
    system.run(
        js.publish(
            topology.CONTACTS_SUBJECT, stale.SerializeToString(), headers={MSG_ID_HEADER: stale.id}
        )
    )
    # Ordered work is handled in sequence: once a later change is through, so is the stale one.
    system.stub.UpsertContact(upsert(email, loyalty_tier="after-the-stale-one"))
    assert_eventually(
        lambda: [
            r
            for r in _requests_for(provider, email, "/api/profile-import")
            if "after-the-stale-one" in json.dumps(r["body"])
        ]
    )
    assert len(_requests_for(provider, email, "/api/profile-subscription-bulk-create-jobs")) == (
        subscribes_before
    )


def test_both_stores_down_is_unavailable_and_the_retry_is_not_a_duplicate(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    event = order_event(unique_email())
    with ServiceHarness.start(
        "postgresql+asyncpg://nobody@127.0.0.1:1/none", "nats://127.0.0.1:1", wait_for_bus=False
    ) as down:
        with pytest.raises(grpc.RpcError) as err:
            down.stub.TrackEvent(pb.TrackEventRequest(event=event))
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_reason(err.value) == "POSTGRESQL_UNAVAILABLE"
    # The caller retries with the same event id once things are back.
    first = system.stub.TrackEvent(pb.TrackEventRequest(event=event))
    again = system.stub.TrackEvent(pb.TrackEventRequest(event=event))
    assert (first.duplicate, again.duplicate) == (False, True)
    assert_eventually(lambda: provider.event_counts().get(event.event_id) == 1)


def test_an_accepted_erasure_forgets_the_email(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    email = unique_email()
    name = system.stub.UpsertContact(upsert(email)).contact.name
    assert_eventually(lambda: provider.holds(email))  # so that there is someone to erase
    system.stub.DeleteContact(pb.DeleteContactRequest(name=name))
    assert_eventually(lambda: provider.erased(email))
    assert_eventually(
        lambda: (
            system.scalar(
                "SELECT status FROM marketing_outbox "
                "WHERE contact_key = :k AND kind = 'contact.erased'",
                k=email_key(email),
            )
            == "COMPLETED"
        )
    )
    leftovers = system.scalar(
        "SELECT count(*) FROM marketing_outbox "
        "WHERE position(convert_to(:p, 'UTF8') in payload) > 0",
        p=email,
    )
    assert leftovers == 0
