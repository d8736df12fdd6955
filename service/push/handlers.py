"""Push RPCs: request messages to the push rules, device tokens back."""

from __future__ import annotations

from marketing.v1 import channels_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.conversions import timestamp
from service.consent.handlers import consent_message
from service.push import rules
from service.push.tokens import TokenView
from service.storage.database import Database

_PLATFORMS = {
    channels_pb2.PUSH_PLATFORM_IOS: "ios",
    channels_pb2.PUSH_PLATFORM_ANDROID: "android",
}
_VENDORS = {channels_pb2.PUSH_VENDOR_APNS: "apns", channels_pb2.PUSH_VENDOR_FCM: "fcm"}
_PLATFORMS_BY_NAME = {name: value for value, name in _PLATFORMS.items()}
_VENDORS_BY_NAME = {name: value for value, name in _VENDORS.items()}


class PushHandlers:
    def __init__(self, db: Database, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def register_push_token(
        self, request: pb.RegisterPushTokenRequest
    ) -> pb.RegisterPushTokenResponse:
        t = request.push_token
        done = await rules.register(
            self._db,
            parent=request.parent,
            device=rules.Device(
                t.token, _PLATFORMS.get(t.platform, ""), _VENDORS.get(t.vendor, "")
            ),
            source=request.source,
            ip_address=request.ip_address,
            user_agent=request.user_agent,
            permission_granted=request.permission_granted,
            clock=self._clock,
        )
        reply = pb.RegisterPushTokenResponse(push_token=push_token_message(done.token))
        if done.consent is not None:
            reply.consent.CopyFrom(consent_message(done.consent))
        return reply

    async def revoke_push_permission(
        self, request: pb.RevokePushPermissionRequest
    ) -> pb.RevokePushPermissionResponse:
        done = await rules.revoke(
            self._db, parent=request.parent, source=request.source, clock=self._clock
        )
        return pb.RevokePushPermissionResponse(
            changed=done.changed, deleted_tokens=done.deleted_tokens
        )

    async def list_push_tokens(
        self, request: pb.ListPushTokensRequest
    ) -> pb.ListPushTokensResponse:
        found = await rules.list_tokens(self._db, parent=request.parent)
        return pb.ListPushTokensResponse(push_tokens=[push_token_message(t) for t in found])


def push_token_message(t: TokenView) -> channels_pb2.PushToken:
    return channels_pb2.PushToken(
        name=rules.push_token_name(t),
        token=t.token,
        platform=_PLATFORMS_BY_NAME[t.platform],
        vendor=_VENDORS_BY_NAME[t.vendor],
        create_time=timestamp(t.created_at),
        update_time=timestamp(t.updated_at),
    )
