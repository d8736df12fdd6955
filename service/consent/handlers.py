"""Consent RPCs: request messages to consent use cases, consent records back to messages."""

from __future__ import annotations

from datetime import timedelta

from marketing.v1 import consent_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.conversions import optional_time, timestamp
from service.common.pagination import PageTokens
from service.consent import rules, unsubscribing
from service.consent.rules import ConsentInput, ConsentType, ConsentView, consent_name
from service.contacts.handlers import contact_message
from service.storage.database import Database

_CONSENT_TYPES = {
    ConsentType.EMAIL: consent_pb2.CONSENT_TYPE_EMAIL,
    ConsentType.SMS: consent_pb2.CONSENT_TYPE_SMS,
    ConsentType.PUSH: consent_pb2.CONSENT_TYPE_PUSH,
    ConsentType.MARKETING: consent_pb2.CONSENT_TYPE_MARKETING,
    ConsentType.ANALYTICS: consent_pb2.CONSENT_TYPE_ANALYTICS,
}
_CONSENT_TYPES_BY_PROTO = {proto: domain for domain, proto in _CONSENT_TYPES.items()}


class ConsentHandlers:
    def __init__(
        self, db: Database, tokens: PageTokens, *, clock: Clock, max_clock_skew: timedelta
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock
        self._skew = max_clock_skew

    async def record_consent(self, request: pb.RecordConsentRequest) -> pb.RecordConsentResponse:
        view = await rules.record_consent(
            self._db,
            parent=request.parent,
            consent=consent_input(request.consent),
            request_id=request.request_id,
            clock=self._clock,
            skew=self._skew,
        )
        return pb.RecordConsentResponse(consent=consent_message(view))

    async def list_consents(self, request: pb.ListConsentsRequest) -> pb.ListConsentsResponse:
        page = await rules.list_consents(
            self._db,
            self._tokens,
            parent=request.parent,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListConsentsResponse(
            consents=[consent_message(view) for view in page.consents],
            next_page_token=page.next_page_token,
        )

    async def subscribe_newsletter(
        self, request: pb.SubscribeNewsletterRequest
    ) -> pb.SubscribeNewsletterResponse:
        subscription = unsubscribing.Subscription(
            email=request.email,
            source=request.source,
            ip_address=request.ip_address,
            user_agent=request.user_agent,
            request_id=request.request_id,
        )
        contact, consent = await unsubscribing.subscribe_newsletter(
            self._db, subscription, clock=self._clock
        )
        return pb.SubscribeNewsletterResponse(
            contact=contact_message(contact), consent=consent_message(consent)
        )

    async def unsubscribe(self, request: pb.UnsubscribeRequest) -> pb.UnsubscribeResponse:
        changed = await unsubscribing.unsubscribe(
            self._db, email=request.email, reason=request.reason, clock=self._clock
        )
        return pb.UnsubscribeResponse(changed=changed)


def consent_input(c: consent_pb2.Consent) -> ConsentInput:
    return ConsentInput(
        type=_CONSENT_TYPES_BY_PROTO.get(c.type),  # None for UNSPECIFIED or unknown values
        granted=c.granted,
        source=c.source,
        ip_address=c.ip_address,
        user_agent=c.user_agent,
        consent_time=optional_time(c, "consent_time", "consent.consent_time"),
        phone_number=c.phone_number,
        wording_version=c.wording_version,
    )


def consent_message(view: ConsentView) -> consent_pb2.Consent:
    return consent_pb2.Consent(
        name=consent_name(view),
        type=_CONSENT_TYPES[view.type],
        granted=view.granted,
        source=view.source,
        ip_address=view.ip_address or "",
        user_agent=view.user_agent or "",
        consent_time=timestamp(view.consent_time),
        record_time=timestamp(view.recorded_at),
        phone_number=view.phone or "",
        wording_version=view.wording_version or "",
    )
