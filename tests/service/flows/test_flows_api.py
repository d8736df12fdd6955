"""Flows over gRPC against a real PostgreSQL: the built-in flows, changes with
every bad field named, and the enrolment decisions a registration leaves,
listed and exited by hand."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2
from marketing.v1 import flow_pb2 as fp
from marketing.v1 import service_pb2 as pb

from tests.builders import consent, upsert
from tests.harness import ServiceHarness, error_reason, field_violations, own_database, unique_email

BUILT_IN = [
    "flows/back-in-stock",
    "flows/cart-recovery",
    "flows/post-purchase",
    "flows/welcome",
    "flows/win-back",
]
DAY_S = 86_400


@pytest.fixture(scope="module")
def flows(database_url: str) -> Iterator[ServiceHarness]:
    """A service of its own: these tests change the built-in flows."""
    with own_database(database_url, "flowsapi") as url, ServiceHarness.start(url) as running:
        yield running


@pytest.fixture
def stub(flows: ServiceHarness):
    return flows.stub


def _update(stub, flow: fp.Flow, *paths: str) -> fp.Flow:
    mask = field_mask_pb2.FieldMask(paths=list(paths))
    return stub.UpdateFlow(pb.UpdateFlowRequest(flow=flow, update_mask=mask)).flow


def _bad_update(stub, flow: fp.Flow, *paths: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _update(stub, flow, *paths)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value


def test_the_built_in_flows_are_listed_in_id_order_and_paged(stub) -> None:
    first = stub.ListFlows(pb.ListFlowsRequest(page_size=2))
    rest = stub.ListFlows(pb.ListFlowsRequest(page_size=10, page_token=first.next_page_token))
    assert [f.name for f in [*first.flows, *rest.flows]] == BUILT_IN
    assert rest.next_page_token == ""


def test_the_welcome_flow_says_what_it_does(stub) -> None:
    welcome = stub.GetFlow(pb.GetFlowRequest(name="flows/welcome")).flow
    assert welcome.trigger.registration and welcome.live and welcome.built_in
    assert welcome.entry_rule.kind == fp.EntryRule.KIND_ONCE_PER_CONTACT
    exits = [c.WhichOneof("kind") for c in welcome.exit_conditions]
    assert exits == ["event_type", "unsubscribed"]
    assert welcome.exit_conditions[0].event_type == "placed_order"
    assert welcome.provider.klaviyo_start_metric == "welcome_flow_started"
    assert welcome.provider.klaviyo_property == "flow_welcome"
    assert welcome.completes_after.seconds == 14 * DAY_S
    recovery = stub.GetFlow(pb.GetFlowRequest(name="flows/cart-recovery")).flow
    assert recovery.trigger.event.event_type == "cart_abandoned"
    assert recovery.entry_rule.key_property == "cart.cart_id"


def test_an_unknown_or_misnamed_flow_is_refused(stub) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetFlow(pb.GetFlowRequest(name="flows/nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as misnamed:
        stub.GetFlow(pb.GetFlowRequest(name="segments/welcome"))
    assert misnamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in field_violations(misnamed.value)


def test_win_back_takes_a_new_delay(stub) -> None:
    flow = fp.Flow(
        name="flows/win-back",
        trigger=fp.FlowTrigger(no_purchase_for=duration_pb2.Duration(seconds=60 * DAY_S)),
    )
    changed = _update(stub, flow, "trigger")
    assert changed.trigger.no_purchase_for.seconds == 60 * DAY_S
    back = fp.Flow(
        name="flows/win-back",
        trigger=fp.FlowTrigger(no_purchase_for=duration_pb2.Duration(seconds=90 * DAY_S)),
    )
    assert _update(stub, back, "trigger").trigger.no_purchase_for.seconds == 90 * DAY_S


def test_bad_changes_name_each_field_and_change_nothing(stub) -> None:
    before = stub.GetFlow(pb.GetFlowRequest(name="flows/post-purchase")).flow
    flow = fp.Flow(
        name="flows/post-purchase",
        display_name=" ",
        trigger=fp.FlowTrigger(event=fp.EventTrigger(event_type="")),
        entry_rule=fp.EntryRule(kind=fp.EntryRule.KIND_ONCE_PER_KEY),
        exit_conditions=[fp.ExitCondition(segment_left="segments/no-such-segment")],
        provider=fp.ProviderFlow(activecampaign_automation_id="abc"),
        completes_after=duration_pb2.Duration(seconds=5),
    )
    error = _bad_update(
        stub,
        flow,
        "display_name",
        "trigger",
        "entry_rule",
        "exit_conditions",
        "provider",
        "completes_after",
    )
    assert set(field_violations(error)) == {
        "flow.display_name",
        "flow.trigger.event.event_type",
        "flow.entry_rule.key_property",
        "flow.exit_conditions",
        "flow.provider.activecampaign_automation_id",
        "flow.completes_after",
    }
    assert stub.GetFlow(pb.GetFlowRequest(name="flows/post-purchase")).flow == before
    mask_error = _bad_update(stub, fp.Flow(name="flows/post-purchase"), "built_in")
    assert "update_mask" in field_violations(mask_error)
    no_segment = fp.Flow(
        name="flows/post-purchase", trigger=fp.FlowTrigger(segment_entered="segments/nowhere")
    )
    assert "flow.trigger.segment_entered" in field_violations(
        _bad_update(stub, no_segment, "trigger")
    )


def test_a_registration_is_listed_and_exited_by_hand(stub) -> None:
    email = unique_email("welcome")
    contact = stub.UpsertContact(upsert(email, first_name="Ada")).contact
    (waiting,) = stub.ListEnrolments(
        pb.ListEnrolmentsRequest(parent="flows/welcome", contact=contact.name)
    ).enrolments
    assert (waiting.state, waiting.rejection_reason) == (fp.Enrolment.STATE_REJECTED, "no_consent")
    stub.RecordConsent(pb.RecordConsentRequest(parent=contact.name, consent=consent("EMAIL")))
    listed = stub.ListEnrolments(
        pb.ListEnrolmentsRequest(
            parent="flows/welcome", contact=contact.name, states=[fp.Enrolment.STATE_ACTIVE]
        )
    ).enrolments
    assert [(e.email, e.state) for e in listed] == [(email, fp.Enrolment.STATE_ACTIVE)]
    assert listed[0].cause.HasField("registration_time")
    everywhere = stub.ListEnrolments(
        pb.ListEnrolmentsRequest(parent="flows/-", contact=contact.name)
    )
    assert [e.name for e in everywhere.enrolments] == [listed[0].name, waiting.name]
    exited = stub.ExitEnrolment(
        pb.ExitEnrolmentRequest(name=listed[0].name, reason="asked us to stop")
    ).enrolment
    assert exited.state == fp.Enrolment.STATE_EXITED
    assert exited.exit_reason == "manual: asked us to stop"
    with pytest.raises(grpc.RpcError) as again:
        stub.ExitEnrolment(pb.ExitEnrolmentRequest(name=listed[0].name))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(again.value) == "ENROLMENT_NOT_ACTIVE"
    unknown = listed[0].name.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    with pytest.raises(grpc.RpcError) as missing:
        stub.ExitEnrolment(pb.ExitEnrolmentRequest(name=unknown))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_flow_that_is_not_live_records_why_it_enrolled_no_one(stub) -> None:
    _update(stub, fp.Flow(name="flows/welcome", live=False), "live")
    try:
        email = unique_email("closed")
        contact = stub.UpsertContact(upsert(email, first_name="Ada")).contact
        (decision,) = stub.ListEnrolments(
            pb.ListEnrolmentsRequest(parent="flows/welcome", contact=contact.name)
        ).enrolments
        assert decision.state == fp.Enrolment.STATE_REJECTED
        assert decision.rejection_reason == "flow_not_live"
    finally:
        _update(stub, fp.Flow(name="flows/welcome", live=True), "live")


def test_listing_enrolments_checks_its_arguments(stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListEnrolments(
            pb.ListEnrolmentsRequest(
                parent="flows/welcome", contact="people/1", states=[fp.Enrolment.STATE_UNSPECIFIED]
            )
        )
    assert set(field_violations(caught.value)) == {"contact", "states[0]"}
    with pytest.raises(grpc.RpcError) as missing:
        stub.ListEnrolments(pb.ListEnrolmentsRequest(parent="flows/nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
