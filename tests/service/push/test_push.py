"""Push tokens and permission, against the real server and PostgreSQL."""

from __future__ import annotations

import uuid

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marketing.v1 import channels_pb2
from marketing.v1 import service_pb2 as pb

from service.consent.rules import may_send_marketing
from service.push.tokens import MAX_TOKENS_PER_CONTACT
from service.storage.models import ConsentType
from tests.builders import consent, upsert
from tests.harness import ServiceHarness, error_reason, field_violations, unique_email

IOS = channels_pb2.PUSH_PLATFORM_IOS
APNS = channels_pb2.PUSH_VENDOR_APNS


def _token() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def _register(stub, parent: str, token: str, **fields) -> pb.RegisterPushTokenResponse:
    device = channels_pb2.PushToken(token=token, platform=IOS, vendor=APNS)
    fields.setdefault("source", "ios_onboarding")
    return stub.RegisterPushToken(
        pb.RegisterPushTokenRequest(parent=parent, push_token=device, **fields)
    )


def _tokens(stub, parent: str) -> list[str]:
    return [
        t.token for t in stub.ListPushTokens(pb.ListPushTokensRequest(parent=parent)).push_tokens
    ]


def _changes(harness: ServiceHarness, email: str) -> list[tuple[str, bool]]:
    return [
        (row.payload.token, row.payload.registered)
        for row in harness.outbox_rows(email, "push_token.changed")
    ]


def test_registering_records_consent_once_and_tells_the_provider(
    stub, harness: ServiceHarness
) -> None:
    email = unique_email()
    contact = stub.UpsertContact(upsert(email)).contact
    first, second = _token(), _token()
    reply = _register(stub, contact.name, first, ip_address="198.51.100.4")
    assert reply.push_token.name.startswith(f"{contact.name}/pushTokens/")
    assert (reply.push_token.platform, reply.push_token.vendor) == (IOS, APNS)
    assert reply.consent.type == 3 and reply.consent.granted  # CONSENT_TYPE_PUSH
    assert reply.consent.source == "ios_onboarding"
    assert not _register(stub, contact.name, second).HasField("consent"), "granted already"
    assert _tokens(stub, contact.name) == [second, first]
    assert _changes(harness, email) == [(first, True), (second, True)]
    assert harness.run(may_send_marketing(harness.db, email=email, channel=ConsentType.PUSH))


def test_a_routine_registration_does_not_undo_a_withdrawal(stub, harness: ServiceHarness) -> None:
    contact = stub.UpsertContact(upsert(unique_email())).contact
    _register(stub, contact.name, _token())
    stub.RevokePushPermission(pb.RevokePushPermissionRequest(parent=contact.name, source="app"))
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as caught:
        _register(stub, contact.name, _token())  # the app's token refresh
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(caught.value) == "PUSH_CONSENT_WITHDRAWN"
    assert harness.table_counts() == before
    again = _register(stub, contact.name, _token(), permission_granted=True)
    assert again.consent.granted and len(_tokens(stub, contact.name)) == 1


def test_a_token_registered_by_someone_else_moves(stub) -> None:
    a = stub.UpsertContact(upsert(unique_email())).contact
    b = stub.UpsertContact(upsert(unique_email())).contact
    token = _token()
    _register(stub, a.name, token)
    _register(stub, b.name, token)
    assert _tokens(stub, a.name) == [] and _tokens(stub, b.name) == [token]


def test_a_contact_keeps_its_newest_devices(stub, harness: ServiceHarness) -> None:
    email = unique_email()
    contact = stub.UpsertContact(upsert(email)).contact
    tokens = [_token() for _ in range(MAX_TOKENS_PER_CONTACT + 2)]
    for token in tokens:
        _register(stub, contact.name, token)
    assert set(_tokens(stub, contact.name)) == set(tokens[2:])
    assert [(t, False) for t in tokens[:2]] == [c for c in _changes(harness, email) if not c[1]]


def test_bad_registrations_are_refused_whole(stub, harness: ServiceHarness) -> None:
    contact = stub.UpsertContact(upsert(unique_email())).contact
    before = harness.table_counts()
    with pytest.raises(grpc.RpcError) as caught:
        stub.RegisterPushToken(
            pb.RegisterPushTokenRequest(
                parent=contact.name, push_token=channels_pb2.PushToken(token="has space")
            )
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == {
        "push_token.token": "INVALID_TOKEN",
        "push_token.platform": "REQUIRED",
        "push_token.vendor": "REQUIRED",
        "source": "REQUIRED",
    }
    missing = f"contacts/{uuid.uuid4()}"
    with pytest.raises(grpc.RpcError) as caught:
        _register(stub, missing, _token())
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert harness.table_counts() == before


# What can happen to a person's devices, as the model sees it.
ACTIONS = st.lists(
    st.sampled_from(["register", "register", "revoke", "withdraw", "stolen"]),
    min_size=1,
    max_size=8,
)


# **Feature: marketing-automation, Property 25: Push token removal on revoke**
@settings(max_examples=100, deadline=None)
@given(actions=ACTIONS)
def test_property_25_a_revoke_deletes_every_token_here_and_at_the_provider(
    stub, harness: ServiceHarness, actions: list[str]
) -> None:
    email, other = unique_email(), unique_email()
    parent = stub.UpsertContact(upsert(email)).contact.name
    thief = stub.UpsertContact(upsert(other)).contact.name
    held: list[str] = []
    for action in actions:
        if action == "register":  # the person grants permission (again)
            token = _token()
            _register(stub, parent, token, permission_granted=True)
            held.insert(0, token)
        elif action == "stolen" and held:  # another person registers one of the devices
            _register(stub, thief, held.pop())
        elif action == "revoke":
            reply = stub.RevokePushPermission(
                pb.RevokePushPermissionRequest(parent=parent, source="ios_settings")
            )
            assert reply.deleted_tokens == len(held)
            gone, held = held, []
            assert all((t, False) in _changes(harness, email) for t in gone)
        elif action == "withdraw":  # push consent withdrawn by a plain consent record
            stub.RecordConsent(
                pb.RecordConsentRequest(parent=parent, consent=consent("PUSH", False))
            )
            gone, held = held, []
            assert all((t, False) in _changes(harness, email) for t in gone)
        assert sorted(_tokens(stub, parent)) == sorted(held), action
        may_push = harness.run(
            may_send_marketing(harness.db, email=email, channel=ConsentType.PUSH)
        )
        assert may_push == bool(held), "push goes only with permission and a device"
    # The provider's last word on each token of the person is the state here.
    last: dict[str, bool] = {}
    for token, registered in _changes(harness, email):
        last[token] = registered
    assert {t for t, registered in last.items() if registered} >= set(held)
