"""Engagement coming back, end to end, against each provider's sandbox: the
webhook registered with `marketing-dispatcher webhooks register`, the sandbox
sending (signed for Klaviyo, the secret in the URL for ActiveCampaign) what a
person did, a dispatcher replica's receiver publishing it, and the service
applying it: an unsubscribe at the provider withdraws email consent in our
audit trail (source: the provider) and suppresses the address; opens count
in the campaign's metrics."""

from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
from marketing.v1 import consent_pb2
from marketing.v1 import service_pb2 as pb

from service.sms.suppression import phone_key
from tests.builders import consent, upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email, unique_phone
from tests.processes import DispatcherProcess, NatsServer, free_port, wait_for_port
from tests.system.provider_state import SystemProvider

SECRET = secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def receiving(
    nats_server: NatsServer, bus_harness: ServiceHarness, provider_under_test: SystemProvider
) -> Iterator[tuple[DispatcherProcess, str]]:
    """A replica delivering to the provider's sandbox and taking its webhooks
    on an address of its own; the receiver's base URL."""
    port = free_port()
    replica = provider_under_test.dispatcher(nats_server.url, webhook_address=f"127.0.0.1:{port}")
    replica.env |= {"KLAVIYO_WEBHOOK_SECRET": SECRET, "ACTIVECAMPAIGN_WEBHOOK_SECRET": SECRET}
    replica.start()
    wait_for_port(port, timeout_s=60)
    yield replica, f"http://127.0.0.1:{port}"
    replica.stop()


def _register(replica: DispatcherProcess, base_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher.main", "webhooks", "register", "--url", base_url],
        env=replica.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _engage(provider: SystemProvider, **fields: str) -> None:
    answer = httpx.post(f"{provider.base_url}/_sandbox/engagement", json=fields, timeout=10)
    assert answer.status_code == 202, answer.text


def _subscriber(system: ServiceHarness, provider: SystemProvider) -> tuple[str, str]:
    email = unique_email()
    name = system.stub.SubscribeNewsletter(
        pb.SubscribeNewsletterRequest(email=email, source="checkout")
    ).contact.name
    # The provider has the person (ActiveCampaign reports nothing of strangers).
    assert_eventually(
        lambda: system.scalar(
            "SELECT count(*) = 0 FROM marketing_outbox WHERE status <> 'COMPLETED'"
            " AND contact_key = encode(sha256(convert_to(:email, 'UTF8')), 'hex')",
            email=email,
        ),
        timeout_s=60,
    )
    return email, name


def test_an_unsubscribe_at_the_provider_withdraws_consent_here(
    bus_harness: ServiceHarness,
    provider: SystemProvider,
    receiving: tuple[DispatcherProcess, str],
) -> None:
    replica, base_url = receiving
    assert _register(replica, base_url)
    email, name = _subscriber(bus_harness, provider)
    _engage(provider, email=email, type="unsubscribed")

    def withdrawn() -> list[consent_pb2.Consent]:
        consents = bus_harness.stub.ListConsents(pb.ListConsentsRequest(parent=name)).consents
        return [c for c in consents if not c.granted and c.source == provider.name]

    assert_eventually(withdrawn, timeout_s=60)
    contact = bus_harness.stub.GetContact(pb.GetContactRequest(name=name)).contact
    assert not contact.email_opt_in
    suppressed = bus_harness.scalar(
        "SELECT reason FROM marketing_suppression WHERE email_sha256 = "
        "encode(sha256(convert_to(:email, 'UTF8')), 'hex')",
        email=email,
    )
    assert suppressed == "unsubscribed"


def test_a_stop_at_the_provider_suppresses_the_number_here(
    bus_harness: ServiceHarness,
    provider: SystemProvider,
    receiving: tuple[DispatcherProcess, str],
) -> None:
    """Property 23 through a provider's webhook: an SMS STOP withdraws SMS consent (source:
    the provider) and puts the number on the SMS suppression list."""
    replica, base_url = receiving
    _register(replica, base_url)
    email, name = _subscriber(bus_harness, provider)
    phone = unique_phone()
    bus_harness.stub.UpsertContact(upsert(email, phone=phone))
    bus_harness.stub.RecordConsent(pb.RecordConsentRequest(parent=name, consent=consent("SMS")))
    _engage(provider, email=email, type="sms_unsubscribed", phone=phone)
    assert_eventually(
        lambda: bus_harness.scalar(
            "SELECT count(*) FROM marketing_sms_suppression WHERE phone_sha256 = :key",
            key=phone_key(phone),
        ),
        timeout_s=60,
    )
    contact = bus_harness.stub.GetContact(pb.GetContactRequest(name=name)).contact
    assert not contact.sms_opt_in and contact.email_opt_in
    newest = bus_harness.stub.ListConsents(pb.ListConsentsRequest(parent=name)).consents[0]
    assert (newest.type, newest.granted, newest.source) == (
        consent_pb2.CONSENT_TYPE_SMS,
        False,
        provider.name,
    )


def test_opens_reported_by_the_provider_count_in_the_campaign(
    bus_harness: ServiceHarness,
    provider: SystemProvider,
    receiving: tuple[DispatcherProcess, str],
) -> None:
    replica, base_url = receiving
    _register(replica, base_url)
    campaign = f"cmp-{uuid.uuid4().hex[:8]}"
    email, _ = _subscriber(bus_harness, provider)
    for kind in ("delivered", "opened", "opened", "clicked"):
        _engage(provider, email=email, type=kind, campaign_id=campaign, url="https://shop/p")

    def counted() -> pb.GetCampaignMetricsResponse | None:
        try:
            reply = bus_harness.stub.GetCampaignMetrics(
                pb.GetCampaignMetricsRequest(campaign_id=campaign)
            )
        except Exception:  # NOT_FOUND until the first engagement is recorded
            return None
        return reply if reply.metrics.figures.clicked == 1 else None

    figures = assert_eventually(counted, timeout_s=60).metrics.figures
    assert (figures.opened, figures.clicked) == (1, 1)
