"""Device tokens end to end: RegisterPushToken gives the provider the token with the
person's profile, RevokePushPermission deletes it there too (Property 25), through the
relay, a dispatcher process and the provider's sandbox. ActiveCampaign has no push
channel: the changes are delivered without a call, and nothing reaches its sandbox."""

from __future__ import annotations

import json
import uuid

from marketing.v1 import channels_pb2
from marketing.v1 import service_pb2 as pb

from service.common.validation import email_key
from tests.builders import upsert
from tests.harness import ServiceHarness, assert_eventually, unique_email, unique_phone
from tests.system.provider_state import SystemProvider


def _settled(system: ServiceHarness, email: str) -> bool:
    statuses = {
        str(s)
        for (s,) in system.sql(
            "SELECT status FROM marketing_outbox WHERE contact_key = :key", key=email_key(email)
        )
    }
    assert "FAILED" not in statuses, "a change was dead-lettered"
    return statuses == {"COMPLETED"}


def _held(provider: SystemProvider, email: str) -> set[str]:
    """The tokens the provider's sandbox holds for the person."""
    if provider.name != "klaviyo":
        return set()
    book = provider.sandbox.state.push_tokens  # type: ignore[attr-defined]
    return {t["token"] for t in book.view() if t["email"] == email}


def test_a_registered_device_reaches_the_provider_and_a_revoke_removes_it(
    system: ServiceHarness, provider: SystemProvider
) -> None:
    email = unique_email("push")
    parent = system.stub.UpsertContact(upsert(email, phone=unique_phone())).contact.name
    tokens = [uuid.uuid4().hex * 2, uuid.uuid4().hex * 2]
    for token, platform, vendor in zip(
        tokens,
        (channels_pb2.PUSH_PLATFORM_IOS, channels_pb2.PUSH_PLATFORM_ANDROID),
        (channels_pb2.PUSH_VENDOR_APNS, channels_pb2.PUSH_VENDOR_FCM),
        strict=True,
    ):
        device = channels_pb2.PushToken(token=token, platform=platform, vendor=vendor)
        system.stub.RegisterPushToken(
            pb.RegisterPushTokenRequest(parent=parent, push_token=device, source="app")
        )
    assert_eventually(lambda: _settled(system, email), timeout_s=60)
    expected = set(tokens) if provider.name == "klaviyo" else set()
    assert _held(provider, email) == expected
    revoked = system.stub.RevokePushPermission(
        pb.RevokePushPermissionRequest(parent=parent, source="ios_settings")
    )
    assert revoked.changed and revoked.deleted_tokens == 2
    assert not system.stub.ListPushTokens(pb.ListPushTokensRequest(parent=parent)).push_tokens
    assert_eventually(lambda: _settled(system, email), timeout_s=60)
    assert _held(provider, email) == set()
    push_calls = [r for r in provider.requests() if "push-tokens" in r["path"]]
    if provider.name == "klaviyo":
        first = [r["method"] for r in push_calls if tokens[0] in r["path"] + json.dumps(r["body"])]
        assert first == ["POST", "DELETE"]
    else:
        assert push_calls == []
