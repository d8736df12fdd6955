"""Random sequences of consent operations, through the service, the relay, a dispatcher
process and its batches, leave every person at the provider (the Klaviyo sandbox's model, or
ActiveCampaign's fields, list status and suppression tag) equal to our state: suppressed or
not, subscribed or not, per channel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from marketing.v1 import service_pb2 as pb

from service.common.validation import email_key
from tests.builders import upsert
from tests.consent_model import ConsentState, Operation, Record, Subscribe, Unsubscribe, send
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.processes import DispatcherProcess, NatsServer
from tests.system.provider_state import SystemProvider

PHONE = "+15005550006"
operation: st.SearchStrategy[Operation] = st.one_of(
    st.sampled_from([Subscribe(), Unsubscribe()]),
    st.builds(Record, st.sampled_from(["EMAIL", "SMS"]), st.booleans()),
)
# Operations on person 0 (with a phone) or 1 (without: SMS consent can only be withdrawn,
# a grant is refused); each group is sent back to back (one dispatcher batch, see the
# linger below) and delivered before the next group starts.
step = st.tuples(st.sampled_from([0, 1]), operation).filter(
    lambda s: s != (1, Record("SMS", granted=True))
)
groups = st.lists(
    st.lists(step, min_size=1, max_size=4),
    min_size=1,
    max_size=3,
)
# ActiveCampaign takes a person's whole state in several calls at 5 a second: fewer examples.
EXAMPLES = {"klaviyo": 100, "activecampaign": 6}


@pytest.fixture(scope="module")
def dispatcher(
    nats_server: NatsServer, provider_under_test: SystemProvider
) -> Iterator[DispatcherProcess]:
    """A replica that waits long enough after a batch's first message for a whole group
    to join it, so a group's older changes are superseded within the batch."""
    replica = provider_under_test.dispatcher(nats_server.url, linger_s="0.3").start()
    yield replica
    replica.stop()


def _delivered(system: ServiceHarness, emails: list[str]) -> bool:
    statuses = system.sql(
        "SELECT status FROM marketing_outbox WHERE contact_key = ANY(:keys)",
        keys=[email_key(e) for e in emails],
    )
    assert "FAILED" not in {str(s) for (s,) in statuses}, "a consent change was dead-lettered"
    return all(str(s) == "COMPLETED" for (s,) in statuses)


def test_provider_consent_equals_ours_after_any_sequence(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    @settings(max_examples=EXAMPLES[provider.name])
    @given(plan=groups)
    @example(  # the fault run's case: the subscribe that lifted the suppression is superseded
        plan=[[(0, Unsubscribe())], [(0, Subscribe()), (0, Record("EMAIL", granted=False))]]
    )
    def any_sequence(plan: list[list[tuple[int, Operation]]]) -> None:
        _check(system, provider, plan)

    any_sequence()


def _check(
    system: ServiceHarness, provider: SystemProvider, plan: list[list[tuple[int, Operation]]]
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
        ours = ConsentState.of_contact(
            system.stub.GetContact(pb.GetContactRequest(email=email)).contact
        )
        expected = provider.expected(ours, sms=True, has_phone=has_phone)
        assert provider.consent(email, sms=True) == expected, email
