"""A campaign end to end, against each provider's sandbox: through the service's campaign
driver, the bus, a dispatcher process, the provider's list import and campaign calls, and
the sandbox's simulated send. Only the people we included get the message (consent,
suppression), rendered with their values and fallbacks and their own preference link; the
decisions and the provider campaign come back to GetCampaign."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from marketing.v1 import campaign_pb2 as cp
from marketing.v1 import segment_pb2 as sp
from marketing.v1 import service_pb2 as pb

from service.common.validation import email_key
from tests.builders import consent, upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.system.provider_state import SystemProvider

TIMEOUT_S = 90
SUBJECT = 'Hi {{ first_name | default: "friend" }}, {{ loyalty_tier | default: "member" }}'
BODY = (
    '<p>Hello {{ first_name | default: "friend" }}, winter sale!</p>'
    '<a href="{{ unsubscribe_url }}">Preferences</a>'
)


def _settled(system: ServiceHarness, emails: list[str]) -> bool:
    keys = [email_key(e) for e in emails]
    statuses = {
        str(s)
        for (s,) in system.sql(
            "SELECT status FROM marketing_outbox WHERE contact_key = ANY(:keys)", keys=keys
        )
    }
    assert "FAILED" not in statuses, "a change was dead-lettered"
    return statuses <= {"COMPLETED"}


def _people(system: ServiceHarness, segment: str) -> tuple[dict[str, str], dict[str, str]]:
    """Three members: one who may be emailed, one who never agreed, one unsubscribed; their
    emails and contact names by kind."""
    emails = {kind: unique_email(kind) for kind in ("included", "silent", "unsubscribed")}
    names: dict[str, str] = {}
    for kind, email in emails.items():
        name = system.stub.UpsertContact(upsert(email, first_name="Ada")).contact.name
        names[kind] = name
        if kind != "silent":
            system.stub.RecordConsent(pb.RecordConsentRequest(parent=name, consent=consent()))
    system.stub.Unsubscribe(pb.UnsubscribeRequest(email=emails["unsubscribed"], reason="test"))
    add = pb.AddToSegmentRequest(segment=segment, contacts=list(names.values()))
    system.stub.AddToSegment(add)
    assert_eventually(lambda: _settled(system, list(emails.values())), timeout_s=TIMEOUT_S)
    return emails, names


def _campaign(system: ServiceHarness, segment: str) -> str:
    campaign = cp.Campaign(
        display_name=f"Winter sale {uuid.uuid4().hex[:6]}",
        channel=cp.CAMPAIGN_CHANNEL_EMAIL,
        audience=segment,
        content=cp.CampaignContent(
            subject=SUBJECT,
            body=BODY,
        ),
        schedule=cp.CampaignSchedule(now=True),
    )
    created = system.stub.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign)).campaign
    system.stub.ScheduleCampaign(pb.ScheduleCampaignRequest(name=created.name))
    return created.name


def _sent(system: ServiceHarness, name: str) -> cp.Campaign | None:
    campaign = system.stub.GetCampaign(pb.GetCampaignRequest(name=name)).campaign
    assert campaign.state != cp.Campaign.STATE_FAILED, campaign.failure
    return campaign if campaign.state == cp.Campaign.STATE_SENT else None


def _messages(provider: SystemProvider, provider_campaign_id: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{provider.base_url}/_sandbox/campaign-messages",
        params={"campaign_id": provider_campaign_id},
        timeout=10,
    )
    reply.raise_for_status()
    messages: list[dict[str, Any]] = reply.json()["messages"]
    return messages


def test_only_the_included_get_the_campaign_rendered_with_their_link(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    segment = sp.Segment(display_name=f"sale {uuid.uuid4().hex[:8]}", kind=sp.Segment.KIND_MANUAL)
    segment_name = system.stub.CreateSegment(pb.CreateSegmentRequest(segment=segment)).segment.name
    emails, contacts = _people(system, segment_name)
    name = _campaign(system, segment_name)

    campaign = assert_eventually(lambda: _sent(system, name), timeout_s=TIMEOUT_S)
    counts = campaign.counts
    assert (counts.included, counts.excluded_no_consent, counts.excluded_suppressed) == (1, 1, 1)
    [part] = campaign.parts
    assert part.state == "SENT" and part.imported == 1 and part.provider_campaign_id

    messages = assert_eventually(
        lambda: _messages(provider, part.provider_campaign_id), timeout_s=TIMEOUT_S
    )
    sent = [m for m in messages if m["status"] == "sent"]
    assert [m["email"] for m in sent] == [emails["included"]]
    [message] = sent
    assert message["subject"] == "Hi Ada, member"  # no tier: its fallback
    assert "Hello Ada, winter sale!" in message["body"]
    assert '<a href="http://127.0.0.1:8081/preferences/' in message["body"]
    assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Why each got it or not, as the send recorded it (PreviewCampaignMessage's `recorded`).
    def recorded(kind: str) -> pb.RecordedCampaignDecision:
        request = pb.PreviewCampaignMessageRequest(name=name, contact=contacts[kind])
        return system.stub.PreviewCampaignMessage(request).recorded

    included = recorded("included")
    assert (included.decision, included.not_sent_reason) == ("included", "")
    assert included.provider_campaign_id == part.provider_campaign_id
    assert recorded("silent").decision == "no_consent"
    assert recorded("unsubscribed").decision == "suppressed"
