"""An A/B-tested campaign end to end, against each provider's sandbox: the test pool gets
its variants through the campaign driver, the bus, a dispatcher replica and the provider's
campaigns; the sandbox's seeded engagement makes one variant's subject opened far more, and
its webhooks bring the opens back (the replica's receiver, the engagement recorder); after
the window the winner by open rate goes to the remainder. Or the winner is chosen by hand
with ChooseAbTestWinner while the test runs. Everyone included gets exactly one message,
their variant's or the winner's; nobody excluded gets any."""

from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2
from marketing.v1 import campaign_pb2 as cp
from marketing.v1 import segment_pb2 as sp
from marketing.v1 import service_pb2 as pb

from dispatcher.sandbox.common.campaign_sends import OPENED, Rates, drawn_engagements
from service.campaigns import ab
from service.common.validation import email_key
from tests.builders import consent, upsert
from tests.harness import (
    ServiceHarness,
    assert_eventually,
    error_reason,
    field_violations,
    unique_email,
)
from tests.processes import DispatcherProcess, NatsServer, free_port, wait_for_port
from tests.system.provider_state import SystemProvider

TIMEOUT_S = 120
# Shared by the module's two campaigns (each person is included in both: under the frequency
# cap of 3) and made once per provider: ActiveCampaign takes a person's changes a few requests
# at a time, 5 requests a second.
AUDIENCE_INCLUDED = 36
SECRET = secrets.token_urlsafe(24)
TEST_FRACTION = 0.5
SEED = 27
OPEN_RATES = (0.05, 0.9)  # variant 0's subject is seldom opened, variant 1's mostly
BODY = (
    '<p>Hello {{ first_name | default: "friend" }}, winter sale!</p>'
    '<a href="{{ unsubscribe_url }}">Preferences</a>'
)
Message = dict[str, Any]


@dataclass(frozen=True)
class Audience:
    segment: str
    included: dict[str, str]  # email -> contact name (consent, not suppressed)
    excluded: list[str]  # emails: one who never agreed, one unsubscribed


@pytest.fixture(scope="module")
def receiving(
    nats_server: NatsServer, bus_harness: ServiceHarness, provider_under_test: SystemProvider
) -> Iterator[tuple[DispatcherProcess, str]]:
    """A replica delivering to the provider's sandbox and taking its webhooks on an address
    of its own; the receiver's base URL."""
    port = free_port()
    replica = provider_under_test.dispatcher(nats_server.url, webhook_address=f"127.0.0.1:{port}")
    replica.env |= {"KLAVIYO_WEBHOOK_SECRET": SECRET, "ACTIVECAMPAIGN_WEBHOOK_SECRET": SECRET}
    replica.start()
    wait_for_port(port, timeout_s=60)
    yield replica, f"http://127.0.0.1:{port}"
    replica.stop()


@pytest.fixture(scope="module")
def audience(bus_harness: ServiceHarness, receiving: tuple[DispatcherProcess, str]) -> Audience:
    return _audience(bus_harness, included=AUDIENCE_INCLUDED)


@pytest.fixture
def system(
    bus_harness: ServiceHarness,
    provider: SystemProvider,
    receiving: tuple[DispatcherProcess, str],
) -> ServiceHarness:
    """The service, with the provider's webhooks registered to the replica's receiver (again
    for each test: clearing the Klaviyo sandbox forgets its webhooks). In place of the
    conftest's `system`, whose replica has no receiver: this module runs one replica only."""
    replica, base_url = receiving
    _register_webhook(replica, base_url)
    return bus_harness


def _register_webhook(replica: DispatcherProcess, base_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher.main", "webhooks", "register", "--url", base_url],
        env=replica.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# --- the audience ----------------------------------------------------------------------


def _audience(system: ServiceHarness, included: int) -> Audience:
    """A manual segment of `included` people with email consent and a first name, and two
    who may not be emailed."""
    segment = sp.Segment(display_name=f"ab {uuid.uuid4().hex[:8]}", kind=sp.Segment.KIND_MANUAL)
    segment_name = system.stub.CreateSegment(pb.CreateSegmentRequest(segment=segment)).segment.name
    consenting = {email: _contact(system, email, consents=True) for email in _emails(included)}
    silent, unsubscribed = unique_email("silent"), unique_email("unsubscribed")
    excluded = {silent: _contact(system, silent, consents=False)}
    excluded[unsubscribed] = _contact(system, unsubscribed, consents=True)
    system.stub.Unsubscribe(pb.UnsubscribeRequest(email=unsubscribed, reason="test"))
    members = [*consenting.values(), *excluded.values()]
    system.stub.AddToSegment(pb.AddToSegmentRequest(segment=segment_name, contacts=members))
    everyone = [*consenting, *excluded]
    assert_eventually(lambda: _at_the_provider(system, everyone), timeout_s=TIMEOUT_S)
    return Audience(segment_name, consenting, list(excluded))


def _emails(count: int) -> list[str]:
    return [unique_email("ab") for _ in range(count)]


def _contact(system: ServiceHarness, email: str, *, consents: bool) -> str:
    name: str = system.stub.UpsertContact(upsert(email, first_name="Ada")).contact.name
    if consents:
        system.stub.RecordConsent(pb.RecordConsentRequest(parent=name, consent=consent()))
    return name


def _at_the_provider(system: ServiceHarness, emails: list[str]) -> bool:
    """Whether every change of these people reached the provider."""
    statuses = {
        str(status)
        for (status,) in system.sql(
            "SELECT status FROM marketing_outbox WHERE contact_key = ANY(:keys)",
            keys=[email_key(e) for e in emails],
        )
    }
    assert "FAILED" not in statuses, "a change was dead-lettered"
    return statuses <= {"COMPLETED"}


# --- the campaign ----------------------------------------------------------------------


def _subjects() -> tuple[str, str]:
    """Two subjects no other campaign has (the sandbox seeds engagement by subject)."""
    tag = uuid.uuid4().hex[:8]
    return f"Winter sale {tag}: 20 % off", f"Last days {tag}: 20 % off everything"


def _ab_campaign(system: ServiceHarness, segment: str, subjects: tuple[str, str]) -> str:
    """A draft: an A/B test of two subjects by open rate, the shortest window."""
    test = cp.AbTest(
        variants=[cp.CampaignContent(subject=subject, body=BODY) for subject in subjects],
        test_fraction=TEST_FRACTION,
        metric=cp.AB_TEST_METRIC_OPEN_RATE,
        window=duration_pb2.Duration(seconds=3600),
        min_sample=5,
    )
    campaign = cp.Campaign(
        display_name=f"AB sale {uuid.uuid4().hex[:6]}",
        channel=cp.CAMPAIGN_CHANNEL_EMAIL,
        audience=segment,
        ab_test=test,
        schedule=cp.CampaignSchedule(now=True),
    )
    return system.stub.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign)).campaign.name


def _seed_engagement(provider: SystemProvider, subjects: tuple[str, str]) -> None:
    """Recipients of campaigns sent from now on open each subject with its rate."""
    by_subject = {s: {"opened": rate} for s, rate in zip(subjects, OPEN_RATES, strict=True)}
    answer = httpx.post(
        f"{provider.base_url}/_sandbox/campaign-engagement",
        json={"seed": SEED, "by_subject": by_subject},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def _schedule_now(system: ServiceHarness, name: str) -> None:
    system.stub.ScheduleCampaign(pb.ScheduleCampaignRequest(name=name))


def _get(system: ServiceHarness, name: str) -> cp.Campaign:
    campaign = system.stub.GetCampaign(pb.GetCampaignRequest(name=name)).campaign
    assert campaign.state != cp.Campaign.STATE_FAILED, campaign.failure
    return campaign


def _in_state(system: ServiceHarness, name: str, state: int) -> cp.Campaign | None:
    campaign = _get(system, name)
    return campaign if campaign.state == state else None


def _wait_for(system: ServiceHarness, name: str, state: int) -> cp.Campaign:
    return assert_eventually(partial(_in_state, system, name, state), timeout_s=TIMEOUT_S)


def _test_parts(campaign: cp.Campaign) -> list[cp.CampaignPart]:
    return [part for part in campaign.parts if not part.remainder]


def _remainder_part(campaign: cp.Campaign) -> cp.CampaignPart:
    [remainder] = [part for part in campaign.parts if part.remainder]
    return remainder


def _end_the_test_window(system: ServiceHarness, name: str) -> None:
    """The service's clock is the real one: the window (an hour at least) is made over by
    moving its start back, for the campaign driver to decide on its next round."""
    system.sql(
        "UPDATE marketing_campaign SET test_sent_at = test_sent_at - interval '2 hours' "
        "WHERE id = :id",
        id=name.removeprefix("campaigns/"),
    )


# --- what the provider sent ------------------------------------------------------------


def _sent_messages(provider: SystemProvider, provider_campaign_id: str) -> list[Message]:
    reply = httpx.get(
        f"{provider.base_url}/_sandbox/campaign-messages",
        params={"campaign_id": provider_campaign_id, "status": "sent"},
        timeout=10,
    )
    reply.raise_for_status()
    messages: list[Message] = reply.json()["messages"]
    return messages


def _messages_of_every_part(
    provider: SystemProvider, campaign: cp.Campaign
) -> dict[int, list[Message]]:
    """Part number -> its messages sent, once every part's campaign has gone out."""

    def sent() -> dict[int, list[Message]] | None:
        found = {p.part: _sent_messages(provider, p.provider_campaign_id) for p in campaign.parts}
        return found if all(found.values()) else None

    return assert_eventually(sent, timeout_s=TIMEOUT_S)


def _opens_drawn(messages: list[Message], rate: float) -> int:
    """How many of `messages` the sandbox's seeded engagement has opened (its draws depend
    on the seed and the message id only)."""
    rates = Rates(opened=rate)
    return sum(
        any(d.kind == OPENED for d in drawn_engagements(SEED, m["id"], rates, lambda: ""))
        for m in messages
    )


def _opens_recorded(system: ServiceHarness, provider_campaign_id: str) -> tuple[int, int]:
    """(delivered, opened) of a provider campaign, as its webhooks reported them."""
    try:
        reply = system.stub.GetCampaignMetrics(
            pb.GetCampaignMetricsRequest(campaign_id=provider_campaign_id)
        )
    except grpc.RpcError as error:  # NOT_FOUND until its first engagement is recorded
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        return 0, 0
    return int(reply.metrics.figures.delivered), int(reply.metrics.figures.opened)


def _recorded_as(
    system: ServiceHarness, provider_campaign_id: str, expected: tuple[int, int]
) -> bool:
    return _opens_recorded(system, provider_campaign_id) == expected


def _wait_for_the_test_opens(
    system: ServiceHarness, campaign: cp.Campaign, messages: dict[int, list[Message]]
) -> None:
    """Until every test part's deliveries and drawn opens are recorded here."""
    for part in _test_parts(campaign):
        sent = messages[part.part]
        expected = (len(sent), _opens_drawn(sent, OPEN_RATES[part.variant]))
        recorded = partial(_recorded_as, system, part.provider_campaign_id, expected)
        assert_eventually(recorded, timeout_s=TIMEOUT_S)


def _assert_each_got_one_message(
    audience: Audience,
    campaign: cp.Campaign,
    messages: dict[int, list[Message]],
    subjects: tuple[str, str],
    winner: int,
) -> None:
    """Every included person got one message: a test recipient their variant's subject
    (by the documented assignment), the others the winner's; nobody excluded got any."""
    received = Counter(m["email"] for part in messages.values() for m in part)
    assert set(received) == set(audience.included)
    assert set(received.values()) == {1}
    campaign_id = campaign.name.removeprefix("campaigns/")
    subject_of = {m["email"]: m["subject"] for part in messages.values() for m in part}
    for email, contact in audience.included.items():
        contact_id = uuid.UUID(contact.removeprefix("contacts/"))
        variant = ab.assign(campaign_id, contact_id, len(subjects), TEST_FRACTION)
        expected = subjects[winner if variant is None else variant]
        assert subject_of[email] == expected, email
    assert not set(audience.excluded) & set(received)


# --- the tests -------------------------------------------------------------------------


def test_the_variant_opened_more_goes_to_the_remainder(
    system: ServiceHarness, provider: SystemProvider, audience: Audience
) -> None:
    subjects = _subjects()
    name = _ab_campaign(system, audience.segment, subjects)
    _seed_engagement(provider, subjects)
    _schedule_now(system, name)

    testing = _wait_for(system, name, cp.Campaign.STATE_TESTING)
    assert sorted(p.variant for p in _test_parts(testing)) == [0, 1]
    test_messages = _messages_of_every_part(provider, testing)
    _wait_for_the_test_opens(system, testing, test_messages)
    _end_the_test_window(system, name)

    sent = _wait_for(system, name, cp.Campaign.STATE_SENT)
    counts = sent.counts
    assert (counts.included, counts.excluded_no_consent, counts.excluded_suppressed) == (
        len(audience.included),
        1,
        1,
    )
    decision = sent.ab_test.decision
    assert (decision.winner, decision.manual) == (1, False), decision.reason
    assert _remainder_part(sent).variant == 1
    messages = _messages_of_every_part(provider, sent)
    _assert_each_got_one_message(audience, sent, messages, subjects, winner=1)


def test_a_winner_chosen_by_hand_goes_to_the_remainder(
    system: ServiceHarness, provider: SystemProvider, audience: Audience
) -> None:
    subjects = _subjects()
    name = _ab_campaign(system, audience.segment, subjects)
    _schedule_now(system, name)
    _wait_for(system, name, cp.Campaign.STATE_TESTING)

    with pytest.raises(grpc.RpcError) as caught:
        system.stub.ChooseAbTestWinner(pb.ChooseAbTestWinnerRequest(name=name, variant=2))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {"variant": "OUT_OF_RANGE"}

    chosen = system.stub.ChooseAbTestWinner(pb.ChooseAbTestWinnerRequest(name=name, variant=0))
    decision = chosen.campaign.ab_test.decision
    assert (decision.winner, decision.manual) == (0, True)
    sent = _wait_for(system, name, cp.Campaign.STATE_SENT)
    assert _remainder_part(sent).variant == 0
    messages = _messages_of_every_part(provider, sent)
    _assert_each_got_one_message(audience, sent, messages, subjects, winner=0)

    with pytest.raises(grpc.RpcError) as caught:
        system.stub.ChooseAbTestWinner(pb.ChooseAbTestWinnerRequest(name=name, variant=1))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "CAMPAIGN_NOT_TESTING"
