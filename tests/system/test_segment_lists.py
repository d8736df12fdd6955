"""A segment linked to a provider list, end to end against each provider's sandbox: through
the service, the relay, a dispatcher process and the provider's list calls, the list holds the
segment's email audience. Consent withdrawn takes a person out, granted puts them in; a list
named by nobody is found or created by the segment's name, and its id comes back to GetSegment;
an erased person leaves every list with the erasure."""

from __future__ import annotations

import uuid

from google.protobuf import field_mask_pb2
from marketing.v1 import segment_pb2 as sp
from marketing.v1 import service_pb2 as pb

from tests.builders import consent, upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email
from tests.system.provider_state import SystemProvider

TIMEOUT_S = 60


def _contact(system: ServiceHarness, *, email_consent: bool) -> tuple[str, str]:
    email = unique_email("listed")
    name = system.stub.UpsertContact(upsert(email)).contact.name
    if email_consent:
        system.stub.RecordConsent(pb.RecordConsentRequest(parent=name, consent=consent("EMAIL")))
    return email, name


def _consent(system: ServiceHarness, name: str, granted: bool) -> None:
    change = consent("EMAIL", granted=granted)
    system.stub.RecordConsent(pb.RecordConsentRequest(parent=name, consent=change))


def _link(system: ServiceHarness, display_name: str) -> str:
    segment = sp.Segment(display_name=display_name, kind=sp.Segment.KIND_MANUAL)
    segment.provider_list.SetInParent()  # find or create a list of this name
    return system.stub.CreateSegment(pb.CreateSegmentRequest(segment=segment)).segment.name


def _shown(system: ServiceHarness, segment: str) -> sp.ProviderList:
    reply = system.stub.GetSegment(pb.GetSegmentRequest(name=segment))
    return reply.segment.provider_list


def test_the_list_holds_the_segments_email_audience(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    display_name = f"listed {uuid.uuid4().hex[:8]}"
    segment = _link(system, display_name)
    consenting, consenting_name = _contact(system, email_consent=True)
    silent, silent_name = _contact(system, email_consent=False)
    add = pb.AddToSegmentRequest(segment=segment, contacts=[consenting_name, silent_name])
    system.stub.AddToSegment(add)
    in_list = provider.list_members
    assert_eventually(lambda: in_list(display_name) == {consenting}, timeout_s=TIMEOUT_S)
    assert_eventually(lambda: _shown(system, segment).pending_changes == 0, timeout_s=TIMEOUT_S)
    shown = _shown(system, segment)
    assert shown.list_id == provider.list_id(display_name)
    assert shown.HasField("last_sync_time")

    _consent(system, consenting_name, False)
    _consent(system, silent_name, True)
    assert_eventually(lambda: provider.list_members(display_name) == {silent}, timeout_s=TIMEOUT_S)

    assert provider.holds(silent)  # (ActiveCampaign's face notes the contact's id here)
    system.stub.DeleteContact(pb.DeleteContactRequest(name=silent_name))
    assert_eventually(lambda: provider.erased(silent), timeout_s=TIMEOUT_S)
    assert_eventually(lambda: provider.list_members(display_name) == set(), timeout_s=TIMEOUT_S)
    assert _failed_list_changes(system) == 0


def test_a_list_named_by_id_is_used_and_unlinking_leaves_it_alone(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    display_name = f"named {uuid.uuid4().hex[:8]}"
    list_id = provider.make_list(display_name)
    segment = sp.Segment(display_name=f"segment of {display_name}", kind=sp.Segment.KIND_MANUAL)
    segment.provider_list.list_id = list_id
    name = system.stub.CreateSegment(pb.CreateSegmentRequest(segment=segment)).segment.name
    email, contact = _contact(system, email_consent=True)
    system.stub.AddToSegment(pb.AddToSegmentRequest(segment=name, contacts=[contact]))
    assert_eventually(lambda: provider.list_members(display_name) == {email}, timeout_s=TIMEOUT_S)

    unlink = pb.UpdateSegmentRequest(
        segment=sp.Segment(name=name),
        update_mask=field_mask_pb2.FieldMask(paths=["provider_list"]),
    )
    system.stub.UpdateSegment(unlink)
    system.stub.RemoveFromSegment(pb.RemoveFromSegmentRequest(segment=name, contacts=[contact]))
    system.segments_settled()
    # Nothing was queued for the removal, and the provider's list is as it was.
    changes = system.outbox_rows(email, "list_membership.changed")
    assert [row.payload.member for row in changes] == [True]
    assert provider.list_members(display_name) == {email}
    assert _failed_list_changes(system) == 0


def _failed_list_changes(system: ServiceHarness) -> int:
    return int(
        system.scalar(
            "SELECT count(*) FROM marketing_outbox "
            "WHERE kind = 'list_membership.changed' AND status = 'FAILED'"
        )
    )
