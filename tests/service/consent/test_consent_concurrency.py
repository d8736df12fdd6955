"""Concurrent consent calls on one address end in a state some serial order of the
whole calls produces, and every derived field follows the newest decision.

Each round fires a random mix of SubscribeNewsletter, Unsubscribe and (when the
contact exists) RecordConsent at one address all at once. The calls that changed
something each left one outbox row, numbered in the order they took the address's
lock; replaying the calls in that order through a model of the rules must give, after
every row, exactly the state the row told the provider, and at the end what
GetContact shows. The audit trail's consent times must follow the same order.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from marketing.v1 import service_pb2 as pb

from service.common.validation import email_key
from tests.builders import upsert
from tests.consent_model import (
    CONSENT_KINDS,
    ConsentState,
    Operation,
    Record,
    Subscribe,
    Unsubscribe,
    of_outbox,
)
from tests.harness import ServiceHarness, unique_email, unique_phone

CALLS_PER_ROUND = 100
ROUNDS = 6
FIRST_CALL_ROUNDS = 60


def _fire(stub, email: str, parent: str | None, rng: random.Random, count: int) -> None:
    choices: list[Callable[[], Operation]] = [Subscribe, Unsubscribe]
    if parent:
        choices.append(lambda: Record(rng.choice(("EMAIL", "SMS")), granted=rng.random() < 0.5))
    calls = []
    for _ in range(count):
        method, request = rng.choice(choices)().call(stub, email, parent, request_id="")
        calls.append(method.future(request))
    for call in calls:
        call.result()


@pytest.mark.parametrize("known_contact", [False, True], ids=["new-address", "known-contact"])
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_consent_calls_are_serializable(
    stub, harness: ServiceHarness, known_contact: bool, round_: int
) -> None:
    email = unique_email("race")
    parent = (
        stub.UpsertContact(upsert(email, phone=unique_phone())).contact.name
        if known_contact
        else None
    )
    _fire(stub, email, parent, random.Random(round_), CALLS_PER_ROUND)
    _assert_serializable(stub, harness, email)


def test_the_first_calls_on_a_new_address_are_serializable(stub, harness: ServiceHarness) -> None:
    """No contact row exists yet to lock: an unsubscribe racing the subscribe that
    creates the contact must still wait for it (or it for the unsubscribe)."""
    for round_ in range(FIRST_CALL_ROUNDS):
        email = unique_email("first")
        _fire(stub, email, None, random.Random(round_), 4)
        _assert_serializable(stub, harness, email)


def _shown(stub, harness: ServiceHarness, email: str) -> ConsentState:
    """What the service shows now (an address only ever unsubscribed has no contact)."""
    try:
        got = stub.GetContact(pb.GetContactRequest(email=email)).contact
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        query = "SELECT count(*) FROM marketing_suppression WHERE email_sha256 = :key"
        return ConsentState(suppressed=harness.scalar(query, key=email_key(email)) == 1)
    return ConsentState.of_contact(got)


def told_state(state: Any) -> dict[str, Any]:
    """A bus ConsentState in the terms of ConsentState.as_told."""
    opt_in = state.opt_in
    return {
        "opt_in": {"email": opt_in.email, "sms": opt_in.sms, "push": opt_in.push},
        "newsletter_member": state.newsletter_member,
        "suppressed": state.suppressed,
    }


def _assert_serializable(stub, harness: ServiceHarness, email: str) -> None:
    state = ConsentState()
    for row in harness.outbox_rows(email):
        if row.kind not in CONSENT_KINDS:
            continue
        state = of_outbox(row.kind, row.payload).apply(state)
        told = told_state(row.payload.state)
        assert told == state.as_told(), f"{row.kind} told the provider a state no order gives"

    assert _shown(stub, harness, email).as_told() == state.as_told()

    times = [
        t
        for (t,) in harness.sql(
            "SELECT c.consent_time FROM marketing_consent c JOIN marketing_contact p"
            " ON p.id = c.contact_id WHERE p.email = :email ORDER BY c.id",
            email=email,
        )
    ]
    assert times == sorted(times), "a decision recorded later carries an earlier consent time"
