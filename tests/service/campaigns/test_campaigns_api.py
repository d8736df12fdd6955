"""Campaigns as resources, through the real server and PostgreSQL: drafts, checks,
changes, scheduling, cancelling, and the preview of one contact's message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2
from marketing.v1 import campaign_pb2, segment_pb2
from marketing.v1 import service_pb2 as pb

from tests.builders import ts, upsert
from tests.harness import ServiceHarness, error_reason, field_violations, unique_email

EMAIL = campaign_pb2.CAMPAIGN_CHANNEL_EMAIL
BODY = (
    '<p>Hi {{ first_name | default: "there" }}</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>'
)


def _audience(stub, *contacts: str) -> str:
    segment = stub.CreateSegment(
        pb.CreateSegmentRequest(
            segment=segment_pb2.Segment(
                display_name=f"audience {uuid.uuid4().hex[:8]}",
                kind=segment_pb2.Segment.KIND_MANUAL,
            )
        )
    ).segment
    if contacts:
        stub.AddToSegment(pb.AddToSegmentRequest(segment=segment.name, contacts=list(contacts)))
    return segment.name


def _subscriber(stub, first_name: str) -> str:
    """A newsletter subscriber (email consent) with a first name."""
    email = unique_email("campaign")
    contact = stub.SubscribeNewsletter(
        pb.SubscribeNewsletterRequest(email=email, source="checkout")
    ).contact
    stub.UpsertContact(upsert(email, first_name=first_name))
    return contact.name


def _draft(stub, audience: str, **fields) -> campaign_pb2.Campaign:
    campaign = campaign_pb2.Campaign(
        display_name=fields.pop("display_name", f"Winter sale {uuid.uuid4().hex[:6]}"),
        channel=fields.pop("channel", EMAIL),
        audience=audience,
        **fields,
    )
    if not campaign.HasField("content") and not campaign.HasField("ab_test"):
        campaign.content.CopyFrom(campaign_pb2.CampaignContent(subject="Sale", body=BODY))
    return stub.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign)).campaign


def _later(hours: int = 2) -> campaign_pb2.CampaignSchedule:
    return campaign_pb2.CampaignSchedule(send_time=ts(datetime.now(UTC) + timedelta(hours=hours)))


def test_a_draft_is_created_read_and_listed(stub) -> None:
    audience = _audience(stub)
    draft = _draft(stub, audience)
    assert draft.name.startswith("campaigns/") and draft.state == campaign_pb2.Campaign.STATE_DRAFT
    assert stub.GetCampaign(pb.GetCampaignRequest(name=draft.name)).campaign == draft
    listed = stub.ListCampaigns(pb.ListCampaignsRequest(page_size=1000)).campaigns
    assert draft.name in [c.name for c in listed]
    assert listed[0].create_time.ToDatetime() >= listed[-1].create_time.ToDatetime()


def test_bad_campaigns_are_refused_whole(stub, harness: ServiceHarness) -> None:
    audience = _audience(stub)
    before = harness.table_counts()
    cases = [
        (
            campaign_pb2.Campaign(),
            {"campaign.display_name", "campaign.channel", "campaign.audience"},
        ),
        (
            campaign_pb2.Campaign(display_name="x", channel=EMAIL, audience="segments/nope-" + "a"),
            {"campaign.audience"},
        ),
        (
            campaign_pb2.Campaign(
                display_name="x",
                channel=EMAIL,
                audience=audience,
                content=campaign_pb2.CampaignContent(subject="S", body="no link"),
            ),
            {"campaign.content.body"},
        ),
        (
            campaign_pb2.Campaign(
                display_name="x",
                channel=EMAIL,
                audience=audience,
                content=campaign_pb2.CampaignContent(subject="S", body=BODY),
                ab_test=campaign_pb2.AbTest(
                    variants=[campaign_pb2.CampaignContent(subject="S", body=BODY)] * 2
                ),
            ),
            {"campaign.content"},
        ),
        (
            campaign_pb2.Campaign(
                display_name="x",
                channel=EMAIL,
                audience=audience,
                ab_test=campaign_pb2.AbTest(
                    variants=[campaign_pb2.CampaignContent(subject="S", body=BODY)],
                    test_fraction=1.5,
                ),
            ),
            {
                "campaign.ab_test.variants",
                "campaign.ab_test.test_fraction",
                "campaign.ab_test.metric",
            },
        ),
    ]
    for campaign, fields in cases:
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateCampaign(pb.CreateCampaignRequest(campaign=campaign))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert set(field_violations(caught.value)) == fields
    assert harness.table_counts() == before


def test_changes_scheduling_and_cancelling(stub) -> None:
    draft = _draft(stub, _audience(stub))
    changed = stub.UpdateCampaign(
        pb.UpdateCampaignRequest(
            campaign=campaign_pb2.Campaign(name=draft.name, display_name="Renamed sale"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        )
    ).campaign
    assert changed.display_name == "Renamed sale" and changed.content == draft.content
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateCampaign(
            pb.UpdateCampaignRequest(
                campaign=campaign_pb2.Campaign(name=draft.name),
                update_mask=field_mask_pb2.FieldMask(paths=["channel"]),
            )
        )
    assert field_violations(caught.value) == {"update_mask": "IMMUTABLE"}
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScheduleCampaign(pb.ScheduleCampaignRequest(name=draft.name))
    assert field_violations(caught.value) == {"campaign.schedule": "REQUIRED"}
    past = campaign_pb2.CampaignSchedule(send_time=ts(datetime.now(UTC) - timedelta(minutes=1)))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ScheduleCampaign(pb.ScheduleCampaignRequest(name=draft.name, schedule=past))
    assert field_violations(caught.value) == {"campaign.schedule.send_time": "IN_THE_PAST"}
    scheduled = stub.ScheduleCampaign(
        pb.ScheduleCampaignRequest(name=draft.name, schedule=_later())
    ).campaign
    assert scheduled.state == campaign_pb2.Campaign.STATE_SCHEDULED
    cancelled = stub.CancelCampaign(pb.CancelCampaignRequest(name=draft.name)).campaign
    assert cancelled.state == campaign_pb2.Campaign.STATE_CANCELLED
    again = stub.CancelCampaign(pb.CancelCampaignRequest(name=draft.name)).campaign
    assert again == cancelled, "cancelling a cancelled campaign changes nothing"
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateCampaign(
            pb.UpdateCampaignRequest(
                campaign=campaign_pb2.Campaign(name=draft.name, display_name="too late"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            )
        )
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "CAMPAIGN_NOT_EDITABLE"


def test_a_missing_campaign_is_not_found(stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCampaign(pb.GetCampaignRequest(name="campaigns/never-made"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_the_preview_renders_for_the_contact_and_says_who_gets_it(stub) -> None:
    ada = _subscriber(stub, "Ada")
    outsider = _subscriber(stub, "Otto")
    campaign = _draft(stub, _audience(stub, ada))
    shown = stub.PreviewCampaignMessage(
        pb.PreviewCampaignMessageRequest(name=campaign.name, contact=ada)
    )
    assert shown.subject == "Sale" and "<p>Hi Ada</p>" in shown.body
    assert "/preferences/" in shown.body and shown.included
    elsewhere = stub.PreviewCampaignMessage(
        pb.PreviewCampaignMessageRequest(name=campaign.name, contact=outsider)
    )
    assert (elsewhere.included, elsewhere.exclusion_reason) == (False, "not_in_audience")
    stub.Unsubscribe(pb.UnsubscribeRequest(email=_email_of(stub, ada)))
    gone = stub.PreviewCampaignMessage(
        pb.PreviewCampaignMessageRequest(name=campaign.name, contact=ada)
    )
    assert (gone.included, gone.exclusion_reason) == (False, "suppressed")


def test_a_missing_value_previews_with_its_fallback(stub) -> None:
    email = unique_email("campaign")
    contact = stub.UpsertContact(upsert(email, first_name="X")).contact
    campaign = _draft(
        stub,
        _audience(stub, contact.name),
        content=campaign_pb2.CampaignContent(
            subject='For {{ loyalty_tier | default: "you" }}', body=BODY
        ),
    )
    shown = stub.PreviewCampaignMessage(
        pb.PreviewCampaignMessageRequest(name=campaign.name, contact=contact.name)
    )
    assert shown.subject == "For you"
    assert (shown.included, shown.exclusion_reason) == (False, "no_consent")


def test_an_ab_preview_shows_the_contacts_variant_or_the_one_asked_for(stub) -> None:
    ada = _subscriber(stub, "Ada")
    variants = [campaign_pb2.CampaignContent(subject=f"Variant {n}", body=BODY) for n in range(3)]
    test = campaign_pb2.AbTest(
        variants=variants, test_fraction=0.5, metric=campaign_pb2.AB_TEST_METRIC_CLICK_RATE
    )
    campaign = _draft(stub, _audience(stub, ada), ab_test=test)
    assert campaign.ab_test.window.seconds == 4 * 3600, "defaults are shown"
    first = stub.PreviewCampaignMessage(
        pb.PreviewCampaignMessageRequest(name=campaign.name, contact=ada)
    )
    again = stub.PreviewCampaignMessage(
        pb.PreviewCampaignMessageRequest(name=campaign.name, contact=ada)
    )
    # The same variant each time (the body's preference link is signed anew, so its
    # timestamp may differ by a second between the two).
    assert (first.variant, first.subject, first.included) == (
        again.variant,
        again.subject,
        again.included,
    )
    assert first.subject == f"Variant {first.variant}"
    asked = stub.PreviewCampaignMessage(
        pb.PreviewCampaignMessageRequest(name=campaign.name, contact=ada, variant=2)
    )
    assert asked.subject == "Variant 2"
    with pytest.raises(grpc.RpcError) as caught:
        stub.PreviewCampaignMessage(
            pb.PreviewCampaignMessageRequest(name=campaign.name, contact=ada, variant=3)
        )
    assert field_violations(caught.value) == {"variant": "OUT_OF_RANGE"}


def _email_of(stub, name: str) -> str:
    return stub.GetContact(pb.GetContactRequest(name=name)).contact.email
