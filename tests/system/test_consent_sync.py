"""Random sequences of consent operations, through the service, the relay, a dispatcher
process and its batches, leave the sandbox's Klaviyo model of every person equal to our
state: suppressed or not, subscribed or not, per channel."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from marketing.v1 import service_pb2 as pb

from dispatcher.sandbox import Sandbox
from service.domain.validation import email_key
from tests.dispatcher.helpers import expected_consent, provider_consent
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.processes import DispatcherProcess, NatsServer
from tests.service.builders import consent, upsert

PHONE = "+15005550006"
operation = st.one_of(
    st.sampled_from([("subscribe",), ("unsubscribe",)]),
    st.tuples(st.just("record"), st.sampled_from(["EMAIL", "SMS"]), st.booleans()),
)
# Operations on person 0 (with a phone) or 1 (without); each group is sent back to back
# (one dispatcher batch, see the linger below) and delivered before the next group starts.
groups = st.lists(
    st.lists(st.tuples(st.sampled_from([0, 1]), operation), min_size=1, max_size=4),
    min_size=1,
    max_size=3,
)


@pytest.fixture(scope="module")
def dispatcher(nats_server: NatsServer, sandbox: Sandbox) -> Iterator[DispatcherProcess]:
    """A replica that waits long enough after a batch's first message for a whole group
    to join it, so a group's older changes are superseded within the batch."""
    replica = DispatcherProcess(nats_server.url, sandbox.base_url, linger_s="0.3").start()
    yield replica
    replica.stop()


def _send(system: ServiceHarness, email: str, parent: str, op: tuple[Any, ...]) -> None:
    if op[0] == "subscribe":
        system.stub.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="t"))
    elif op[0] == "unsubscribe":
        system.stub.Unsubscribe(pb.UnsubscribeRequest(email=email))
    else:
        record = consent(op[1], granted=op[2])
        system.stub.RecordConsent(pb.RecordConsentRequest(parent=parent, consent=record))


def _delivered(system: ServiceHarness, emails: list[str]) -> bool:
    statuses = system.sql(
        "SELECT status FROM marketing_outbox WHERE contact_key = ANY(:keys)",
        keys=[email_key(e) for e in emails],
    )
    assert "FAILED" not in {str(s) for (s,) in statuses}, "a consent change was dead-lettered"
    return all(str(s) == "COMPLETED" for (s,) in statuses)


@given(plan=groups)
@example(  # the fault run's case: the subscribe that lifted the suppression is superseded
    plan=[[(0, ("unsubscribe",))], [(0, ("subscribe",)), (0, ("record", "EMAIL", False))]]
)
def test_provider_consent_equals_ours_after_any_sequence(
    system: ServiceHarness, provider: Sandbox, plan: list[list[tuple[int, tuple[Any, ...]]]]
) -> None:
    emails = [unique_email("sync"), unique_email("sync")]
    parents = [
        system.stub.UpsertContact(upsert(emails[0], phone=PHONE)).contact.name,
        system.stub.UpsertContact(upsert(emails[1])).contact.name,
    ]
    for group in plan:
        for person, op in group:
            _send(system, emails[person], parents[person], op)
        assert_eventually(lambda: _delivered(system, emails))

    for email, has_phone in zip(emails, (True, False), strict=True):
        ours = system.stub.GetContact(pb.GetContactRequest(email=email)).contact
        expected = expected_consent(
            email=ours.email_opt_in,
            sms=ours.sms_opt_in and has_phone,
            suppressed=ours.suppressed,
        )
        shown = httpx.get(f"{provider.base_url}/_sandbox/profiles", params={"email": email})
        assert provider_consent(shown.json()) == expected, email
