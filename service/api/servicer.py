"""MarketingService: one method per RPC, each handing the request to its feature's handler.

The methods stay here, one line each, because this is where gRPC meets the
service: `rpc_method` translates the service's errors into a status and
counts the call. What a request means lives in the feature packages
(`service.<feature>.handlers`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
from marketing.v1 import service_pb2 as pb
from marketing.v1 import service_pb2_grpc
from marketing_runtime.clock import Clock

from service.api.errors import rpc_method
from service.campaigns.audience import Cap
from service.campaigns.handlers import CampaignHandlers
from service.campaigns.rules import DEFAULT_UPLOAD_LEAD
from service.common.pagination import PageTokens
from service.consent.handlers import ConsentHandlers
from service.contact_sync.handlers import ContactSyncHandlers
from service.contacts.handlers import ContactHandlers
from service.deliveries.handlers import DeliveryHandlers
from service.events.handlers import EventHandlers
from service.events.rules import EventSink
from service.flows.handlers import FlowHandlers
from service.preferences.links import PreferenceLinks
from service.provider_catalogue.handlers import ProviderCatalogueHandlers
from service.push.handlers import PushHandlers
from service.reconcile.handlers import ReconcileHandlers
from service.reconcile.provider import PersonReader
from service.reports.handlers import ReportHandlers
from service.reports.rules import DEFAULT_REPORT_SETTINGS, ReportSettings
from service.segments.handlers import SegmentHandlers
from service.sms.handlers import SmsHandlers
from service.storage.database import Database
from service.waitlists.handlers import WaitlistHandlers

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
        person_reader: PersonReader,
        preference_links: PreferenceLinks,
        frequency_cap: Cap,
        reports: ReportSettings = DEFAULT_REPORT_SETTINGS,
        campaign_lead: timedelta = DEFAULT_UPLOAD_LEAD,
    ) -> None:
        self._contacts = ContactHandlers(
            db, page_tokens, clock=clock, max_clock_skew=max_clock_skew
        )
        self._consent = ConsentHandlers(db, page_tokens, clock=clock, max_clock_skew=max_clock_skew)
        self._events = EventHandlers(events_sink, clock=clock, max_clock_skew=max_clock_skew)
        self._deliveries = DeliveryHandlers(db, page_tokens, clock=clock)
        self._syncs = ContactSyncHandlers(db, page_tokens, clock=clock)
        self._reconcile = ReconcileHandlers(db, person_reader, clock=clock)
        self._segments = SegmentHandlers(db, page_tokens, clock=clock)
        self._flows = FlowHandlers(db, page_tokens, clock=clock)
        self._catalogue = ProviderCatalogueHandlers(db, page_tokens)
        self._waitlists = WaitlistHandlers(db, page_tokens, clock=clock)
        self._reports = ReportHandlers(db, reports, clock=clock)
        self._sms = SmsHandlers(db, clock=clock)
        self._push = PushHandlers(db, clock=clock)
        self._campaigns = CampaignHandlers(
            db, page_tokens, preference_links, frequency_cap, clock=clock, lead=campaign_lead
        )

    @rpc_method
    async def UpsertContact(
        self, request: pb.UpsertContactRequest, context: Context
    ) -> pb.UpsertContactResponse:
        return await self._contacts.upsert_contact(request)

    @rpc_method
    async def GetContact(
        self, request: pb.GetContactRequest, context: Context
    ) -> pb.GetContactResponse:
        return await self._contacts.get_contact(request)

    @rpc_method
    async def ListContacts(
        self, request: pb.ListContactsRequest, context: Context
    ) -> pb.ListContactsResponse:
        return await self._contacts.list_contacts(request)

    @rpc_method
    async def DeleteContact(
        self, request: pb.DeleteContactRequest, context: Context
    ) -> pb.DeleteContactResponse:
        return await self._contacts.delete_contact(request)

    @rpc_method
    async def ReconcileContact(
        self, request: pb.ReconcileContactRequest, context: Context
    ) -> pb.ReconcileContactResponse:
        return await self._reconcile.reconcile_contact(request)

    @rpc_method
    async def RecordConsent(
        self, request: pb.RecordConsentRequest, context: Context
    ) -> pb.RecordConsentResponse:
        return await self._consent.record_consent(request)

    @rpc_method
    async def ListConsents(
        self, request: pb.ListConsentsRequest, context: Context
    ) -> pb.ListConsentsResponse:
        return await self._consent.list_consents(request)

    @rpc_method
    async def SubscribeNewsletter(
        self, request: pb.SubscribeNewsletterRequest, context: Context
    ) -> pb.SubscribeNewsletterResponse:
        return await self._consent.subscribe_newsletter(request)

    @rpc_method
    async def Unsubscribe(
        self, request: pb.UnsubscribeRequest, context: Context
    ) -> pb.UnsubscribeResponse:
        return await self._consent.unsubscribe(request)

    @rpc_method
    async def OptOutSms(
        self, request: pb.OptOutSmsRequest, context: Context
    ) -> pb.OptOutSmsResponse:
        return await self._sms.opt_out_sms(request)

    @rpc_method
    async def RegisterPushToken(
        self, request: pb.RegisterPushTokenRequest, context: Context
    ) -> pb.RegisterPushTokenResponse:
        return await self._push.register_push_token(request)

    @rpc_method
    async def RevokePushPermission(
        self, request: pb.RevokePushPermissionRequest, context: Context
    ) -> pb.RevokePushPermissionResponse:
        return await self._push.revoke_push_permission(request)

    @rpc_method
    async def ListPushTokens(
        self, request: pb.ListPushTokensRequest, context: Context
    ) -> pb.ListPushTokensResponse:
        return await self._push.list_push_tokens(request)

    @rpc_method
    async def TrackEvent(
        self, request: pb.TrackEventRequest, context: Context
    ) -> pb.TrackEventResponse:
        return await self._events.track_event(request)

    @rpc_method
    async def TrackEvents(
        self, request: pb.TrackEventsRequest, context: Context
    ) -> pb.TrackEventsResponse:
        return await self._events.track_events(request)

    @rpc_method
    async def ListProviderCampaigns(
        self, request: pb.ListProviderCampaignsRequest, context: Context
    ) -> pb.ListProviderCampaignsResponse:
        return await self._catalogue.list_campaigns(request)

    @rpc_method
    async def GetProviderCampaign(
        self, request: pb.GetProviderCampaignRequest, context: Context
    ) -> pb.GetProviderCampaignResponse:
        return await self._catalogue.get_campaign(request)

    @rpc_method
    async def ListProviderFlows(
        self, request: pb.ListProviderFlowsRequest, context: Context
    ) -> pb.ListProviderFlowsResponse:
        return await self._catalogue.list_flows(request)

    @rpc_method
    async def GetQueueStats(
        self, request: pb.GetQueueStatsRequest, context: Context
    ) -> pb.GetQueueStatsResponse:
        return await self._deliveries.get_queue_stats(request)

    @rpc_method
    async def ListFailedDeliveries(
        self, request: pb.ListFailedDeliveriesRequest, context: Context
    ) -> pb.ListFailedDeliveriesResponse:
        return await self._deliveries.list_failed_deliveries(request)

    @rpc_method
    async def RetryFailedDeliveries(
        self, request: pb.RetryFailedDeliveriesRequest, context: Context
    ) -> pb.RetryFailedDeliveriesResponse:
        return await self._deliveries.retry_failed_deliveries(request)

    @rpc_method
    async def StartContactSync(
        self, request: pb.StartContactSyncRequest, context: Context
    ) -> pb.StartContactSyncResponse:
        return await self._syncs.start(request)

    @rpc_method
    async def GetContactSync(
        self, request: pb.GetContactSyncRequest, context: Context
    ) -> pb.GetContactSyncResponse:
        return await self._syncs.get(request)

    @rpc_method
    async def ListContactSyncs(
        self, request: pb.ListContactSyncsRequest, context: Context
    ) -> pb.ListContactSyncsResponse:
        return await self._syncs.list(request)

    @rpc_method
    async def CancelContactSync(
        self, request: pb.CancelContactSyncRequest, context: Context
    ) -> pb.CancelContactSyncResponse:
        return await self._syncs.cancel(request)

    @rpc_method
    async def ListContactSyncErrors(
        self, request: pb.ListContactSyncErrorsRequest, context: Context
    ) -> pb.ListContactSyncErrorsResponse:
        return await self._syncs.list_errors(request)

    @rpc_method
    async def CreateSegment(
        self, request: pb.CreateSegmentRequest, context: Context
    ) -> pb.CreateSegmentResponse:
        return await self._segments.create(request)

    @rpc_method
    async def GetSegment(
        self, request: pb.GetSegmentRequest, context: Context
    ) -> pb.GetSegmentResponse:
        return await self._segments.get(request)

    @rpc_method
    async def ListSegments(
        self, request: pb.ListSegmentsRequest, context: Context
    ) -> pb.ListSegmentsResponse:
        return await self._segments.list_segments(request)

    @rpc_method
    async def UpdateSegment(
        self, request: pb.UpdateSegmentRequest, context: Context
    ) -> pb.UpdateSegmentResponse:
        return await self._segments.update(request)

    @rpc_method
    async def DeleteSegment(
        self, request: pb.DeleteSegmentRequest, context: Context
    ) -> pb.DeleteSegmentResponse:
        return await self._segments.delete(request)

    @rpc_method
    async def ListSegmentContacts(
        self, request: pb.ListSegmentContactsRequest, context: Context
    ) -> pb.ListSegmentContactsResponse:
        return await self._segments.list_contacts(request)

    @rpc_method
    async def AddToSegment(
        self, request: pb.AddToSegmentRequest, context: Context
    ) -> pb.AddToSegmentResponse:
        return await self._segments.add(request)

    @rpc_method
    async def RemoveFromSegment(
        self, request: pb.RemoveFromSegmentRequest, context: Context
    ) -> pb.RemoveFromSegmentResponse:
        return await self._segments.remove(request)

    @rpc_method
    async def PreviewSegment(
        self, request: pb.PreviewSegmentRequest, context: Context
    ) -> pb.PreviewSegmentResponse:
        return await self._segments.preview(request)

    @rpc_method
    async def GetFlow(self, request: pb.GetFlowRequest, context: Context) -> pb.GetFlowResponse:
        return await self._flows.get(request)

    @rpc_method
    async def ListFlows(
        self, request: pb.ListFlowsRequest, context: Context
    ) -> pb.ListFlowsResponse:
        return await self._flows.list_flows(request)

    @rpc_method
    async def UpdateFlow(
        self, request: pb.UpdateFlowRequest, context: Context
    ) -> pb.UpdateFlowResponse:
        return await self._flows.update(request)

    @rpc_method
    async def CreateCampaign(
        self, request: pb.CreateCampaignRequest, context: Context
    ) -> pb.CreateCampaignResponse:
        return await self._campaigns.create(request)

    @rpc_method
    async def GetCampaign(
        self, request: pb.GetCampaignRequest, context: Context
    ) -> pb.GetCampaignResponse:
        return await self._campaigns.get(request)

    @rpc_method
    async def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: Context
    ) -> pb.ListCampaignsResponse:
        return await self._campaigns.list_campaigns(request)

    @rpc_method
    async def UpdateCampaign(
        self, request: pb.UpdateCampaignRequest, context: Context
    ) -> pb.UpdateCampaignResponse:
        return await self._campaigns.update(request)

    @rpc_method
    async def ScheduleCampaign(
        self, request: pb.ScheduleCampaignRequest, context: Context
    ) -> pb.ScheduleCampaignResponse:
        return await self._campaigns.schedule(request)

    @rpc_method
    async def CancelCampaign(
        self, request: pb.CancelCampaignRequest, context: Context
    ) -> pb.CancelCampaignResponse:
        return await self._campaigns.cancel(request)

    @rpc_method
    async def PreviewCampaignMessage(
        self, request: pb.PreviewCampaignMessageRequest, context: Context
    ) -> pb.PreviewCampaignMessageResponse:
        return await self._campaigns.preview(request)

    @rpc_method
    async def ChooseAbTestWinner(
        self, request: pb.ChooseAbTestWinnerRequest, context: Context
    ) -> pb.ChooseAbTestWinnerResponse:
        return await self._campaigns.choose_winner(request)

    @rpc_method
    async def ListEnrolments(
        self, request: pb.ListEnrolmentsRequest, context: Context
    ) -> pb.ListEnrolmentsResponse:
        return await self._flows.list_enrolments(request)

    @rpc_method
    async def ExitEnrolment(
        self, request: pb.ExitEnrolmentRequest, context: Context
    ) -> pb.ExitEnrolmentResponse:
        return await self._flows.exit(request)

    @rpc_method
    async def SubscribeBackInStock(
        self, request: pb.SubscribeBackInStockRequest, context: Context
    ) -> pb.SubscribeBackInStockResponse:
        return await self._waitlists.subscribe(request)

    @rpc_method
    async def UnsubscribeBackInStock(
        self, request: pb.UnsubscribeBackInStockRequest, context: Context
    ) -> pb.UnsubscribeBackInStockResponse:
        return await self._waitlists.unsubscribe(request)

    @rpc_method
    async def ListBackInStockSubscriptions(
        self, request: pb.ListBackInStockSubscriptionsRequest, context: Context
    ) -> pb.ListBackInStockSubscriptionsResponse:
        return await self._waitlists.list_subscriptions(request)

    @rpc_method
    async def NotifyBackInStock(
        self, request: pb.NotifyBackInStockRequest, context: Context
    ) -> pb.NotifyBackInStockResponse:
        return await self._waitlists.notify(request)

    @rpc_method
    async def GetCampaignMetrics(
        self, request: pb.GetCampaignMetricsRequest, context: Context
    ) -> pb.GetCampaignMetricsResponse:
        return await self._reports.campaign(request)

    @rpc_method
    async def GetFlowMetrics(
        self, request: pb.GetFlowMetricsRequest, context: Context
    ) -> pb.GetFlowMetricsResponse:
        return await self._reports.flow(request)

    @rpc_method
    async def GetDashboardMetrics(
        self, request: pb.GetDashboardMetricsRequest, context: Context
    ) -> pb.GetDashboardMetricsResponse:
        return await self._reports.dashboard(request)

    @rpc_method
    async def CompareCampaigns(
        self, request: pb.CompareCampaignsRequest, context: Context
    ) -> pb.CompareCampaignsResponse:
        return await self._reports.compare(request)
