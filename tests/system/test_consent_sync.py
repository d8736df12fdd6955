"""Random sequences of consent operations, through the service, the relay, a dispatcher
process and its batches, leave the sandbox's Klaviyo model of every person equal to our
state: suppressed or not, subscribed or not, per channel."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from marketing.v1 import service_pb2 as pb

from dispatcher.sandbox import Sandbox
from service.common.validation import email_key
from tests.builders import upsert
from tests.consent_model import Operation, Record, Subscribe, Unsubscribe, send
from tests.dispatcher.helpers import expected_consent, provider_consent
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.processes import DispatcherProcess, NatsServer

PHONE = "+15005550006"
operation: st.SearchStrategy[Operation] = st.one_of(
    st.sampled_from([Subscribe(), Unsubscribe()]),
    st.builds(Record, st.sampled_from(["EMAIL", "SMS"]), st.booleans()),
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


def _delivered(system: ServiceHarness, emails: list[str]) -> bool:
    statuses = system.sql(
        "SELECT status FROM marketing_outbox WHERE contact_key = ANY(:keys)",
        keys=[email_key(e) for e in emails],
    )
    assert "FAILED" not in {str(s) for (s,) in statuses}, "a consent change was dead-lettered"
    return all(str(s) == "COMPLETED" for (s,) in statuses)


@given(plan=groups)
@example(  # the fault run's case: the subscribe that lifted the suppression is superseded
    plan=[[(0, Unsubscribe())], [(0, Subscribe()), (0, Record("EMAIL", granted=False))]]
)
def test_provider_consent_equals_ours_after_any_sequence(
    system: ServiceHarness, provider: Sandbox, plan: list[list[tuple[int, Operation]]]
) -> None:
    emails = [unique_email("sync"), unique_email("sync")]
    parents = [
        system.stub.UpsertContact(upsert(emails[0], phone=PHONE)).contact.name,
        system.stub.UpsertContact(upsert(emails[1])).contact.name,
    ]
    for group in plan:
        for person, op in group:
            send(system.stub, op, emails[person], parents[person])
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
