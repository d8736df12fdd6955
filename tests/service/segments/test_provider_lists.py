"""A segment linked to a provider list: its email audience (members with email
consent, not suppressed) is queued for the provider as joins and leaves, in
order after the consent changes that cause them; results mark the list synced
and name a list found or created by name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import field_mask_pb2
from marketing.bus.v1 import bus_pb2
from marketing.v1 import segment_pb2 as sp
from marketing.v1 import service_pb2 as pb

from service.deliveries.results import record_outbox
from tests.builders import consent, upsert
from tests.harness import assert_eventually, error_reason, field_violations, unique_email

LIST_KIND = "list_membership.changed"


def manual(list_id: str | None) -> pb.CreateSegmentRequest:
    segment = sp.Segment(display_name=f"listed {uuid.uuid4().hex[:8]}", kind=sp.Segment.KIND_MANUAL)
    if list_id is not None:
        segment.provider_list.list_id = list_id
    return pb.CreateSegmentRequest(segment=segment)


def person(seg, *, email_consent: bool) -> tuple[str, str]:
    email = unique_email("listed")
    name = seg.UpsertContact(upsert(email)).contact.name
    if email_consent:
        seg.RecordConsent(pb.RecordConsentRequest(parent=name, consent=consent("EMAIL")))
    return email, name


def list_changes(harness, email: str) -> list[tuple[str, bool]]:
    return [(r.payload.list_id, r.payload.member) for r in harness.outbox_rows(email, LIST_KIND)]


def test_only_members_who_may_be_emailed_join_the_list(seg, segments_harness) -> None:
    segment = seg.CreateSegment(manual("L-one")).segment
    assert segment.provider_list.list_id == "L-one"
    consenting, consenting_name = person(seg, email_consent=True)
    silent, silent_name = person(seg, email_consent=False)
    seg.AddToSegment(
        pb.AddToSegmentRequest(segment=segment.name, contacts=[consenting_name, silent_name])
    )
    assert list_changes(segments_harness, consenting) == [("L-one", True)]
    assert list_changes(segments_harness, silent) == []
    shown = seg.GetSegment(pb.GetSegmentRequest(name=segment.name)).segment
    assert shown.provider_list.pending_changes == 1
    assert not shown.provider_list.HasField("last_sync_time")


def test_consent_withdrawn_or_granted_moves_people_out_and_in_after_the_consent(
    seg, segments_harness
) -> None:
    segment = seg.CreateSegment(manual("L-two")).segment
    leaving, leaving_name = person(seg, email_consent=True)
    joining, joining_name = person(seg, email_consent=False)
    seg.AddToSegment(
        pb.AddToSegmentRequest(segment=segment.name, contacts=[leaving_name, joining_name])
    )
    seg.RecordConsent(
        pb.RecordConsentRequest(parent=leaving_name, consent=consent("EMAIL", granted=False))
    )
    seg.RecordConsent(pb.RecordConsentRequest(parent=joining_name, consent=consent("EMAIL")))
    assert_eventually(lambda: list_changes(segments_harness, leaving)[-1:] == [("L-two", False)])
    assert_eventually(lambda: list_changes(segments_harness, joining) == [("L-two", True)])
    for email in (leaving, joining):
        kinds = [row.kind for row in segments_harness.outbox_rows(email)]
        # The last list change follows the consent change that caused it.
        last = {kind: n for n, kind in enumerate(kinds)}
        assert last[LIST_KIND] > last["consent.changed"]


def test_an_unsubscribe_takes_the_person_out_of_the_list(seg, segments_harness) -> None:
    segment = seg.CreateSegment(manual("L-three")).segment
    email, name = person(seg, email_consent=True)
    seg.AddToSegment(pb.AddToSegmentRequest(segment=segment.name, contacts=[name]))
    seg.Unsubscribe(pb.UnsubscribeRequest(email=email))
    assert_eventually(
        lambda: list_changes(segments_harness, email) == [("L-three", True), ("L-three", False)]
    )


def test_a_dynamic_segment_links_to_a_list_found_by_name_once_the_provider_answers(
    seg, segments_harness
) -> None:
    tier = f"tier-{uuid.uuid4().hex[:6]}"
    email, name = person(seg, email_consent=True)
    seg.UpsertContact(upsert(email, loyalty_tier=tier))
    node = sp.SegmentFilter(
        field=sp.CONTACT_FIELD_LOYALTY_TIER,
        operator=sp.FILTER_OPERATOR_EQUALS,
        value=sp.FilterValue(string_value=tier),
    )
    segment = sp.Segment(display_name=f"tier {tier}", kind=sp.Segment.KIND_DYNAMIC, filter=node)
    segment.provider_list.SetInParent()
    created = seg.CreateSegment(pb.CreateSegmentRequest(segment=segment)).segment
    assert created.HasField("provider_list") and created.provider_list.list_id == ""
    (row,) = segments_harness.outbox_rows(email, LIST_KIND)
    assert row.payload.list_name == f"tier {tier}" and row.payload.member
    _answer(segments_harness, row.payload, bus_pb2.OUTCOME_DELIVERED, "FOUND1")
    shown = seg.GetSegment(pb.GetSegmentRequest(name=created.name)).segment.provider_list
    assert shown.list_id == "FOUND1" and shown.pending_changes == 0
    assert shown.HasField("last_sync_time")
    # Later changes name the list by its id.
    seg.RecordConsent(pb.RecordConsentRequest(parent=name, consent=consent("EMAIL", False)))
    assert_eventually(lambda: list_changes(segments_harness, email)[-1] == ("FOUND1", False))


def test_unlinking_stops_the_list_changes(seg, segments_harness) -> None:
    segment = seg.CreateSegment(manual("L-four")).segment
    email, name = person(seg, email_consent=True)
    update = pb.UpdateSegmentRequest(
        segment=sp.Segment(name=segment.name),
        update_mask=field_mask_pb2.FieldMask(paths=["provider_list"]),
    )
    unlinked = seg.UpdateSegment(update).segment
    assert not unlinked.HasField("provider_list")
    seg.AddToSegment(pb.AddToSegmentRequest(segment=segment.name, contacts=[name]))
    assert list_changes(segments_harness, email) == []
    # Linking again puts the audience in the list.
    update.segment.provider_list.list_id = "L-five"
    relinked = seg.UpdateSegment(update).segment
    assert relinked.provider_list.list_id == "L-five"
    assert list_changes(segments_harness, email) == [("L-five", True)]


@pytest.mark.parametrize("list_id", ["has space", "x" * 65, "semi;colon", "ü"])
def test_a_bad_list_id_is_refused_naming_the_field(seg, segments_harness, list_id) -> None:
    before = segments_harness.table_counts()
    with pytest.raises(grpc.RpcError) as caught:
        seg.CreateSegment(manual(list_id))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {"segment.provider_list.list_id": "INVALID_LIST_ID"}
    assert segments_harness.table_counts() == before


def test_the_newsletter_cannot_be_linked(seg, segments_harness) -> None:
    update = pb.UpdateSegmentRequest(
        segment=sp.Segment(name="segments/newsletter"),
        update_mask=field_mask_pb2.FieldMask(paths=["provider_list"]),
    )
    update.segment.provider_list.list_id = "L-news"
    with pytest.raises(grpc.RpcError) as caught:
        seg.UpdateSegment(update)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "NEWSLETTER_LIST_IS_CONFIGURED"


def _answer(harness, payload, outcome: bus_pb2.Outcome, provider_id: str = "") -> None:
    """The list change with this payload comes back from the dispatcher with `outcome`,
    once the refresher has drained the people's changes: a drain after a failed
    result would decide the join again, before the test's next change does."""
    harness.segments_settled()
    row_id = harness.scalar(
        "SELECT id FROM marketing_outbox WHERE kind = :kind AND payload = :payload",
        kind=LIST_KIND,
        payload=payload.SerializeToString(),
    )
    result = bus_pb2.DeliveryResult(
        delivery_id=str(row_id), outcome=outcome, provider_id=provider_id
    )

    async def record() -> None:
        async with harness.db.transaction() as session:
            await record_outbox(session, [result], datetime.now(UTC))

    harness.run(record())


def _relink(seg, segment: str, list_id: str | None) -> sp.Segment:
    update = pb.UpdateSegmentRequest(
        segment=sp.Segment(name=segment),
        update_mask=field_mask_pb2.FieldMask(paths=["provider_list"]),
    )
    if list_id is not None:
        update.segment.provider_list.list_id = list_id
    return seg.UpdateSegment(update).segment


def test_a_result_of_an_earlier_link_names_no_list_of_the_new_one(seg, segments_harness) -> None:
    segment = seg.CreateSegment(manual(None)).segment
    email, name = person(seg, email_consent=True)
    seg.AddToSegment(pb.AddToSegmentRequest(segment=segment.name, contacts=[name]))
    _relink(seg, segment.name, "")  # found by name: a first link
    _relink(seg, segment.name, None)
    relinked = _relink(seg, segment.name, "")  # a second one, no list known yet
    # The first link's change comes back late, naming the list it found.
    first = segments_harness.outbox_rows(email, LIST_KIND)[0]
    _answer(segments_harness, first.payload, bus_pb2.OUTCOME_DELIVERED, "OLDLIST")
    shown = seg.GetSegment(pb.GetSegmentRequest(name=relinked.name)).segment.provider_list
    assert shown.list_id == "" and not shown.HasField("last_sync_time")
    assert shown.pending_changes == 1  # the second link's join still waits
    # Asking again for a list by name keeps this link: nothing is sent again.
    _relink(seg, segment.name, "")
    assert len(segments_harness.outbox_rows(email, LIST_KIND)) == 2


def test_a_failed_join_is_decided_again_by_the_next_change(seg, segments_harness) -> None:
    segment = seg.CreateSegment(manual("L-six")).segment
    email, name = person(seg, email_consent=True)
    seg.AddToSegment(pb.AddToSegmentRequest(segment=segment.name, contacts=[name]))
    (join,) = segments_harness.outbox_rows(email, LIST_KIND)
    _answer(segments_harness, join.payload, bus_pb2.OUTCOME_FAILED)
    shown = seg.GetSegment(pb.GetSegmentRequest(name=segment.name)).segment.provider_list
    assert shown.pending_changes == 0
    seg.UpsertContact(upsert(email, first_name="Again"))
    assert_eventually(lambda: list_changes(segments_harness, email) == [("L-six", True)] * 2)


def test_a_list_keeps_one_segment(seg, segments_harness) -> None:
    seg.CreateSegment(manual("L-shared"))
    before = segments_harness.table_counts()
    with pytest.raises(grpc.RpcError) as caught:
        seg.CreateSegment(manual("L-shared"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "LIST_LINKED_ELSEWHERE"
    assert segments_harness.table_counts() == before
