"""Segments over gRPC against a real PostgreSQL: the resource, its filter's
validation (paths named), membership as contacts change, manual members, and
previews."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2
from marketing.v1 import segment_pb2 as sp
from marketing.v1 import service_pb2 as pb

from tests.builders import consent, placed_order, upsert
from tests.harness import assert_eventually, error_reason, field_violations, unique_email

F = sp.SegmentFilter
OP = sp.FilterOperator


def text(value: str) -> sp.FilterValue:
    return sp.FilterValue(string_value=value)


def group(kind: str, children: list[F]) -> F:
    """An `and` or `or` node (Python cannot name those fields as keywords)."""
    node = F()
    getattr(node, kind).extend(children)
    return node


def tier_is(tier: str) -> F:
    return F(
        field=sp.CONTACT_FIELD_LOYALTY_TIER, operator=OP.FILTER_OPERATOR_EQUALS, value=text(tier)
    )


def dynamic(filter_: F, display_name: str = "") -> pb.CreateSegmentRequest:
    segment = sp.Segment(
        display_name=display_name or f"segment {uuid.uuid4().hex[:8]}",
        kind=sp.Segment.KIND_DYNAMIC,
        filter=filter_,
    )
    return pb.CreateSegmentRequest(segment=segment)


def members(stub, name: str) -> set[str]:
    reply = stub.ListSegmentContacts(pb.ListSegmentContactsRequest(parent=name, page_size=1000))
    return {c.email for c in reply.contacts}


def members_become(stub, name: str, expected: set[str]) -> None:
    """Contact changes reach dynamic segments through the refresher's next
    drain (a moment later), not in the call that made them."""
    assert_eventually(lambda: members(stub, name) == expected, timeout_s=10)


def test_a_dynamic_segment_holds_whoever_matches_and_follows_changes(seg) -> None:
    tier = f"tier-{uuid.uuid4().hex[:6]}"
    gold, other = unique_email(), unique_email()
    seg.UpsertContact(upsert(gold, loyalty_tier=tier))
    seg.UpsertContact(upsert(other, loyalty_tier="bronze"))
    created = seg.CreateSegment(dynamic(tier_is(tier))).segment
    assert created.name.startswith("segments/") and created.contact_count == 1
    assert members(seg, created.name) == {gold}
    seg.UpsertContact(upsert(other, loyalty_tier=tier))
    seg.UpsertContact(upsert(gold, loyalty_tier="bronze"))
    members_become(seg, created.name, {other})
    got = seg.GetSegment(pb.GetSegmentRequest(name=created.name)).segment
    assert got.filter == created.filter and got.contact_count == 1


def test_the_newsletter_segment_is_listed_and_cannot_be_deleted(seg) -> None:
    listed = seg.ListSegments(pb.ListSegmentsRequest(page_size=1000)).segments
    newsletter = next(s for s in listed if s.name == "segments/newsletter")
    assert newsletter.built_in and newsletter.kind == sp.Segment.KIND_MANUAL
    with pytest.raises(grpc.RpcError) as caught:
        seg.DeleteSegment(pb.DeleteSegmentRequest(name="segments/newsletter"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "SEGMENT_BUILT_IN"


def test_a_bad_filter_names_the_path_of_each_mistake(seg, segments_harness) -> None:
    before = segments_harness.table_counts()
    bad = group(
        "and",
        [
            tier_is("gold"),
            F(
                field=sp.CONTACT_FIELD_ORDER_COUNT,
                operator=OP.FILTER_OPERATOR_CONTAINS,
                value=text("3"),
            ),
            group(
                "or",
                [
                    F(
                        field=sp.CONTACT_FIELD_LIFETIME_VALUE,
                        operator=OP.FILTER_OPERATOR_GREATER_THAN,
                        value=text("x"),
                    )
                ],
            ),
        ],
    )
    with pytest.raises(grpc.RpcError) as caught:
        seg.CreateSegment(dynamic(bad))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {
        "segment.filter.and[1].operator",
        "segment.filter.and[2].or[0].value",
    }
    assert segments_harness.table_counts() == before


def test_manual_members_are_added_and_removed(seg) -> None:
    first = seg.UpsertContact(upsert(unique_email())).contact
    second = seg.UpsertContact(upsert(unique_email())).contact
    segment = sp.Segment(display_name=f"vip {uuid.uuid4().hex[:6]}", kind=sp.Segment.KIND_MANUAL)
    name = seg.CreateSegment(pb.CreateSegmentRequest(segment=segment)).segment.name
    added = seg.AddToSegment(
        pb.AddToSegmentRequest(segment=name, contacts=[first.name, second.name])
    )
    assert added.added == 2
    again = seg.AddToSegment(pb.AddToSegmentRequest(segment=name, contacts=[first.name]))
    assert again.added == 0
    removed = seg.RemoveFromSegment(
        pb.RemoveFromSegmentRequest(segment=name, contacts=[first.name])
    )
    assert removed.removed == 1
    assert members(seg, name) == {second.email}


def test_preview_counts_without_creating(seg) -> None:
    tier = f"tier-{uuid.uuid4().hex[:6]}"
    for _ in range(3):
        seg.UpsertContact(upsert(unique_email(), loyalty_tier=tier))
    before = len(seg.ListSegments(pb.ListSegmentsRequest(page_size=1000)).segments)
    reply = seg.PreviewSegment(pb.PreviewSegmentRequest(filter=tier_is(tier), sample_size=2))
    assert reply.contact_count == 3 and len(reply.sample) == 2
    assert len(seg.ListSegments(pb.ListSegmentsRequest(page_size=1000)).segments) == before


def test_update_changes_the_filter_and_re_evaluates(seg) -> None:
    tier = f"tier-{uuid.uuid4().hex[:6]}"
    email = unique_email()
    seg.UpsertContact(upsert(email, loyalty_tier=tier))
    created = seg.CreateSegment(dynamic(tier_is("nobody-has-this"))).segment
    assert created.contact_count == 0
    changed = created.__class__(name=created.name, filter=tier_is(tier))
    reply = seg.UpdateSegment(
        pb.UpdateSegmentRequest(
            segment=changed, update_mask=field_mask_pb2.FieldMask(paths=["filter"])
        )
    )
    assert reply.segment.contact_count == 1 and members(seg, created.name) == {email}


def test_an_event_changes_the_segments_with_event_conditions(seg) -> None:
    email = unique_email()
    seg.UpsertContact(upsert(email))
    ordered = F(
        event=sp.EventCondition(event_type="placed_order"),
        operator=OP.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL,
        value=sp.FilterValue(number_value=1),
    )
    name = seg.CreateSegment(dynamic(ordered)).segment.name
    assert email not in members(seg, name)
    seg.TrackEvent(pb.TrackEventRequest(event=placed_order(email, order_id=uuid.uuid4().hex)))
    members_become(seg, name, {email})


def test_a_duration_past_any_window_and_a_nul_are_invalid_arguments(seg) -> None:
    huge = F(
        event=sp.EventCondition(event_type="placed\x00order"),
        operator=OP.FILTER_OPERATOR_EQUALS,
        value=sp.FilterValue(number_value=0),
    )
    huge.event.within_last.seconds = 2**62
    with pytest.raises(grpc.RpcError) as caught:
        seg.PreviewSegment(pb.PreviewSegmentRequest(filter=huge))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(caught.value)) == {
        "filter.event.event_type",
        "filter.event.within_last",
    }


def test_a_segment_testing_membership_follows_its_dependency_s_filter_change(seg) -> None:
    tier = f"tier-{uuid.uuid4().hex[:6]}"
    email = unique_email()
    seg.UpsertContact(upsert(email, loyalty_tier=tier))
    base = seg.CreateSegment(dynamic(tier_is("nobody-has-this"))).segment
    member_of_base = F(
        segment=base.name, operator=OP.FILTER_OPERATOR_EQUALS, value=sp.FilterValue(bool_value=True)
    )
    follower = seg.CreateSegment(dynamic(member_of_base)).segment
    assert members(seg, follower.name) == set()
    changed = sp.Segment(name=base.name, filter=tier_is(tier))
    mask = field_mask_pb2.FieldMask(paths=["filter"])
    seg.UpdateSegment(pb.UpdateSegmentRequest(segment=changed, update_mask=mask))
    assert members(seg, follower.name) == {email}


def test_the_newsletter_takes_members_with_email_consent_and_tells_the_provider(
    seg, segments_harness
) -> None:
    without, with_consent = unique_email(), unique_email()
    refused = seg.UpsertContact(upsert(without)).contact
    before = segments_harness.table_counts()
    with pytest.raises(grpc.RpcError) as caught:
        seg.AddToSegment(
            pb.AddToSegmentRequest(segment="segments/newsletter", contacts=[refused.name])
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "NEWSLETTER_NEEDS_EMAIL_CONSENT"
    assert segments_harness.table_counts() == before

    joining = seg.UpsertContact(upsert(with_consent)).contact
    seg.RecordConsent(pb.RecordConsentRequest(parent=joining.name, consent=consent("EMAIL")))
    added = seg.AddToSegment(
        pb.AddToSegmentRequest(segment="segments/newsletter", contacts=[joining.name])
    )
    assert added.added == 1
    sent = segments_harness.outbox_rows(with_consent, "consent.changed")[-1].payload
    assert sent.state.newsletter_member and sent.state.opt_in.email
    recorded = segments_harness.scalar(
        "SELECT count(*) FROM marketing_segment_change c JOIN marketing_contact p "
        "ON p.id = c.contact_id WHERE p.email = :email AND c.segment_id = 'newsletter' "
        "AND c.joined",
        email=with_consent,
    )
    assert recorded == 1

    with pytest.raises(grpc.RpcError) as caught:
        seg.RemoveFromSegment(
            pb.RemoveFromSegmentRequest(segment="segments/newsletter", contacts=[joining.name])
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "NEWSLETTER_LEAVE_IS_UNSUBSCRIBE"


def test_subscribe_and_unsubscribe_record_the_newsletter_s_joins_and_leaves(
    seg, segments_harness
) -> None:
    email = unique_email()
    seg.SubscribeNewsletter(pb.SubscribeNewsletterRequest(email=email, source="footer"))
    seg.Unsubscribe(pb.UnsubscribeRequest(email=email, reason="test"))
    changes = segments_harness.sql(
        "SELECT c.joined FROM marketing_segment_change c JOIN marketing_contact p "
        "ON p.id = c.contact_id WHERE p.email = :email AND c.segment_id = 'newsletter' "
        "ORDER BY c.id",
        email=email,
    )
    assert [row.joined for row in changes] == [True, False]
