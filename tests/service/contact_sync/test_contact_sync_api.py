"""The contact-sync RPCs on a real PostgreSQL (no bus: no driver moves the
syncs on): validation naming the field, NOT_FOUND, one sync at a time (by the
service and by the database), newest first, cancel, request ids."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from marketing.v1 import contact_sync_pb2
from marketing.v1 import service_pb2 as pb

from service.errors import AbortedError
from tests.builders import upsert
from tests.harness import ServiceHarness, error_reason, field_violations, own_database, unique_email

State = contact_sync_pb2.ContactSync.State


@pytest.fixture(scope="module")
def syncs(database_url: str) -> Iterator[ServiceHarness]:
    """A service on a database of its own: its syncs stay RUNNING (no driver)."""
    with own_database(database_url, "syncapi") as url, ServiceHarness.start(url) as running:
        yield running


def _end_running(harness: ServiceHarness) -> None:
    """As the driver would end it, so that the next test may start one."""
    harness.sql(
        "UPDATE marketing_contact_sync SET state = 'SUCCEEDED', ended_at = now() "
        "WHERE state = 'RUNNING'"
    )


def _precondition_subject(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            detail.Unpack(failure)
            return str(failure.violations[0].subject)
    raise AssertionError("no PreconditionFailure")


def test_a_sync_starts_running_with_the_contacts_there_are(syncs: ServiceHarness) -> None:
    for _ in range(3):
        syncs.stub.UpsertContact(upsert(unique_email(), first_name="Ada"))
    total = syncs.scalar("SELECT count(*) FROM marketing_contact")
    sync = syncs.stub.StartContactSync(pb.StartContactSyncRequest()).contact_sync
    try:
        assert sync.state == State.STATE_RUNNING
        assert sync.total_contacts == total >= 3
        assert sync.name.startswith("contactSyncs/")
        assert sync.HasField("create_time") and not sync.HasField("end_time")
        got = syncs.stub.GetContactSync(pb.GetContactSyncRequest(name=sync.name))
        assert got.contact_sync == sync
    finally:
        _end_running(syncs)


def test_one_sync_at_a_time_and_the_error_names_the_running_one(syncs: ServiceHarness) -> None:
    first = syncs.stub.StartContactSync(pb.StartContactSyncRequest()).contact_sync
    try:
        with pytest.raises(grpc.RpcError) as raised:
            syncs.stub.StartContactSync(pb.StartContactSyncRequest())
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(raised.value) == "CONTACT_SYNC_RUNNING"
        assert _precondition_subject(raised.value) == first.name
    finally:
        _end_running(syncs)


def test_the_database_allows_one_running_sync_too(syncs: ServiceHarness) -> None:
    insert = (
        "INSERT INTO marketing_contact_sync (id, state, created_at, updated_at) "
        "VALUES (CAST(:id AS uuid), 'RUNNING', now(), now())"
    )
    syncs.sql(insert, id=str(uuid.uuid4()))
    try:
        with pytest.raises(AbortedError) as raised:  # a start racing another: retry, then refused
            syncs.sql(insert, id=str(uuid.uuid4()))
        assert "uq_marketing_contact_sync_running" in str(raised.value.__cause__)
    finally:
        _end_running(syncs)


def test_a_repeated_request_id_returns_the_sync_it_started(syncs: ServiceHarness) -> None:
    request_id = str(uuid.uuid4())
    first = syncs.stub.StartContactSync(pb.StartContactSyncRequest(request_id=request_id))
    again = syncs.stub.StartContactSync(pb.StartContactSyncRequest(request_id=request_id))
    _end_running(syncs)
    assert again.contact_sync.name == first.contact_sync.name
    with pytest.raises(grpc.RpcError) as raised:
        syncs.stub.StartContactSync(pb.StartContactSyncRequest(request_id="not-a-uuid"))
    assert field_violations(raised.value) == {"request_id": "INVALID_REQUEST_ID"}


@pytest.mark.parametrize(
    ("name", "reason"),
    [("", "REQUIRED"), ("contacts/123", "INVALID_NAME"), ("contactSyncs/nope", "INVALID_NAME")],
)
def test_bad_names_are_invalid_arguments_naming_the_field(
    syncs: ServiceHarness, name: str, reason: str
) -> None:
    calls = [
        (syncs.stub.GetContactSync, pb.GetContactSyncRequest(name=name), "name"),
        (syncs.stub.CancelContactSync, pb.CancelContactSyncRequest(name=name), "name"),
        (
            syncs.stub.ListContactSyncErrors,
            pb.ListContactSyncErrorsRequest(parent=name),
            "parent",
        ),
    ]
    for method, request, field in calls:
        with pytest.raises(grpc.RpcError) as raised:
            method(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(raised.value) == {field: reason}


def test_an_unknown_sync_is_not_found(syncs: ServiceHarness) -> None:
    name = f"contactSyncs/{uuid.uuid4()}"
    calls = [
        (syncs.stub.GetContactSync, pb.GetContactSyncRequest(name=name)),
        (syncs.stub.CancelContactSync, pb.CancelContactSyncRequest(name=name)),
        (syncs.stub.ListContactSyncErrors, pb.ListContactSyncErrorsRequest(parent=name)),
    ]
    for method, request in calls:
        with pytest.raises(grpc.RpcError) as raised:
            method(request)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_reason(raised.value) == "CONTACT_SYNC_NOT_FOUND"


def test_syncs_are_listed_newest_first_page_by_page(syncs: ServiceHarness) -> None:
    started = []
    for _ in range(3):
        started.append(syncs.stub.StartContactSync(pb.StartContactSyncRequest()).contact_sync.name)
        _end_running(syncs)
    listed, token = [], ""
    while True:
        page = syncs.stub.ListContactSyncs(
            pb.ListContactSyncsRequest(page_size=2, page_token=token)
        )
        listed += [sync.name for sync in page.contact_syncs]
        token = page.next_page_token
        if not token:
            break
    assert listed[:3] == started[::-1]
    with pytest.raises(grpc.RpcError) as raised:
        syncs.stub.ListContactSyncs(pb.ListContactSyncsRequest(page_token="forged"))
    assert field_violations(raised.value) == {"page_token": "INVALID_PAGE_TOKEN"}


def test_cancel_marks_a_running_sync_and_refuses_an_ended_one(syncs: ServiceHarness) -> None:
    sync = syncs.stub.StartContactSync(pb.StartContactSyncRequest()).contact_sync
    try:
        cancelled = syncs.stub.CancelContactSync(pb.CancelContactSyncRequest(name=sync.name))
        assert cancelled.contact_sync.HasField("cancel_time")
        assert cancelled.contact_sync.state == State.STATE_RUNNING  # until in-flight is reported
        again = syncs.stub.CancelContactSync(pb.CancelContactSyncRequest(name=sync.name))
        assert again.contact_sync.cancel_time == cancelled.contact_sync.cancel_time
    finally:
        _end_running(syncs)
    with pytest.raises(grpc.RpcError) as raised:
        syncs.stub.CancelContactSync(pb.CancelContactSyncRequest(name=sync.name))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(raised.value) == "CONTACT_SYNC_ENDED"
