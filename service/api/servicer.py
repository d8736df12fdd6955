"""MarketingService: each method maps the request to a domain call and back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import duration_pb2
from marketing.v1 import service_pb2 as pb
from marketing.v1 import service_pb2_grpc
from marketing_runtime.clock import Clock

from service.api import convert
from service.api.errors import rpc_method
from service.common.pagination import PageTokens
from service.consent import rules as consent
from service.contacts import rules as contacts
from service.deliveries import queue
from service.deliveries import rules as deliveries
from service.events import rules as events
from service.events.rules import EventSink
from service.storage.database import Database

Context = grpc.aio.ServicerContext[Any, Any]


class MarketingServicer(service_pb2_grpc.MarketingServiceServicer):
    def __init__(
        self,
        db: Database,
        events_sink: EventSink,
        page_tokens: PageTokens,
        *,
        clock: Clock,
        max_clock_skew: timedelta,
    ) -> None:
        self._db = db
        self._events = events_sink
        self._tokens = page_tokens
        self._clock = clock
        self._skew = max_clock_skew

    @rpc_method
    async def UpsertContact(
        self, request: pb.UpsertContactRequest, context: Context
    ) -> pb.UpsertContactResponse:
        fields = convert.contact_fields(request.contact)
        view, created = await contacts.upsert_contact(
            self._db, fields, now=self._clock(), skew=self._skew
        )
        return pb.UpsertContactResponse(contact=convert.contact_message(view), created=created)

    @rpc_method
    async def GetContact(
        self, request: pb.GetContactRequest, context: Context
    ) -> pb.GetContactResponse:
        lookup = request.WhichOneof("lookup")
        view = await contacts.get_contact(
            self._db,
            name=request.name if lookup == "name" else None,
            email=request.email if lookup == "email" else None,
        )
        return pb.GetContactResponse(contact=convert.contact_message(view))

    @rpc_method
    async def ListContacts(
        self, request: pb.ListContactsRequest, context: Context
    ) -> pb.ListContactsResponse:
        page = await contacts.list_contacts(
            self._db, self._tokens, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListContactsResponse(
            contacts=[convert.contact_message(v) for v in page.contacts],
            next_page_token=page.next_page_token,
        )

    @rpc_method
    async def DeleteContact(
        self, request: pb.DeleteContactRequest, context: Context
    ) -> pb.DeleteContactResponse:
        await contacts.delete_contact(self._db, name=request.name, now=self._clock())
        return pb.DeleteContactResponse()

    @rpc_method
    async def RecordConsent(
        self, request: pb.RecordConsentRequest, context: Context
    ) -> pb.RecordConsentResponse:
        row = await consent.record_consent(
            self._db,
            parent=request.parent,
            consent=convert.consent_input(request.consent),
            request_id=request.request_id,
            clock=self._clock,
            skew=self._skew,
        )
        return pb.RecordConsentResponse(consent=convert.consent_message(row))

    @rpc_method
    async def ListConsents(
        self, request: pb.ListConsentsRequest, context: Context
    ) -> pb.ListConsentsResponse:
        page = await consent.list_consents(
            self._db,
            self._tokens,
            parent=request.parent,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListConsentsResponse(
            consents=[convert.consent_message(row) for row in page.consents],
            next_page_token=page.next_page_token,
        )

    @rpc_method
    async def SubscribeNewsletter(
        self, request: pb.SubscribeNewsletterRequest, context: Context
    ) -> pb.SubscribeNewsletterResponse:
        subscription = consent.Subscription(
            email=request.email,
            source=request.source,
            ip_address=request.ip_address,
            user_agent=request.user_agent,
            request_id=request.request_id,
        )
        view, row = await consent.subscribe_newsletter(self._db, subscription, clock=self._clock)
        return pb.SubscribeNewsletterResponse(
            contact=convert.contact_message(view), consent=convert.consent_message(row)
        )

    @rpc_method
    async def Unsubscribe(
        self, request: pb.UnsubscribeRequest, context: Context
    ) -> pb.UnsubscribeResponse:
        changed = await consent.unsubscribe(
            self._db, email=request.email, reason=request.reason, clock=self._clock
        )
        return pb.UnsubscribeResponse(changed=changed)

    @rpc_method
    async def TrackEvent(
        self, request: pb.TrackEventRequest, context: Context
    ) -> pb.TrackEventResponse:
        result = await events.track_event(
            self._events, convert.event_input(request.event), now=self._clock(), skew=self._skew
        )
        return pb.TrackEventResponse(event_id=result.event_id, duplicate=result.duplicate)

    @rpc_method
    async def TrackEvents(
        self, request: pb.TrackEventsRequest, context: Context
    ) -> pb.TrackEventsResponse:
        results = await events.track_events(
            self._events,
            [convert.event_input(e, i) for i, e in enumerate(request.events)],
            now=self._clock(),
            skew=self._skew,
        )
        return pb.TrackEventsResponse(
            results=[
                pb.TrackEventResponse(event_id=r.event_id, duplicate=r.duplicate) for r in results
            ]
        )

    @rpc_method
    async def GetQueueStats(
        self, request: pb.GetQueueStatsRequest, context: Context
    ) -> pb.GetQueueStatsResponse:
        stats = await queue.queue_stats(self._db, now=self._clock())
        age = duration_pb2.Duration()
        age.FromTimedelta(stats.oldest_pending_age)
        return pb.GetQueueStatsResponse(
            pending=stats.pending,
            in_flight=stats.in_flight,
            failed=stats.failed,
            oldest_pending_age=age,
        )

    @rpc_method
    async def ListFailedDeliveries(
        self, request: pb.ListFailedDeliveriesRequest, context: Context
    ) -> pb.ListFailedDeliveriesResponse:
        page = await deliveries.list_failed(
            self._db, self._tokens, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListFailedDeliveriesResponse(
            failed_deliveries=[convert.failed_delivery_message(row) for row in page.rows],
            next_page_token=page.next_page_token,
        )

    @rpc_method
    async def RetryFailedDeliveries(
        self, request: pb.RetryFailedDeliveriesRequest, context: Context
    ) -> pb.RetryFailedDeliveriesResponse:
        retried = await deliveries.retry_failed(self._db, names=list(request.names))
        return pb.RetryFailedDeliveriesResponse(retried=retried)
