"""Campaign RPCs: request messages to campaign use cases, views back to messages."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from google.protobuf import duration_pb2
from marketing.v1 import campaign_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.campaigns import rules
from service.campaigns.audience import (
    CAPPED,
    INCLUDED,
    NO_CONSENT,
    NO_DEVICE,
    NO_PHONE,
    SUPPRESSED,
    Cap,
)
from service.campaigns.content import Channel
from service.campaigns.preview import Recorded, preview
from service.campaigns.rules import CampaignState, CampaignView, PartView, campaign_name
from service.campaigns.spec import (
    MAX_WINDOW,
    AbTestSpec,
    CampaignSpec,
    ContentSpec,
    Metric,
    ScheduleSpec,
    When,
)
from service.common.conversions import optional_time, timestamp
from service.common.pagination import PageTokens
from service.errors import Violations
from service.preferences.links import PreferenceLinks
from service.storage.database import Database

_CHANNELS = {
    campaign_pb2.CAMPAIGN_CHANNEL_EMAIL: Channel.EMAIL,
    campaign_pb2.CAMPAIGN_CHANNEL_SMS: Channel.SMS,
    campaign_pb2.CAMPAIGN_CHANNEL_PUSH: Channel.PUSH,
}
_CHANNEL_ENUMS = {channel: number for number, channel in _CHANNELS.items()}
_METRICS = {
    campaign_pb2.AB_TEST_METRIC_OPEN_RATE: Metric.OPEN_RATE,
    campaign_pb2.AB_TEST_METRIC_CLICK_RATE: Metric.CLICK_RATE,
    campaign_pb2.AB_TEST_METRIC_PLACED_ORDER_RATE: Metric.PLACED_ORDER_RATE,
}
_METRIC_ENUMS = {metric: number for number, metric in _METRICS.items()}
_STATES = {
    state: cast(
        campaign_pb2.Campaign.State, campaign_pb2.Campaign.State.Value(f"STATE_{state.value}")
    )
    for state in CampaignState
}


class CampaignHandlers:
    def __init__(
        self,
        db: Database,
        tokens: PageTokens,
        links: PreferenceLinks,
        cap: Cap,
        *,
        clock: Clock,
        lead: timedelta = rules.DEFAULT_UPLOAD_LEAD,
    ) -> None:
        self._db = db
        self._tokens = tokens
        self._links = links
        self._cap = cap
        self._clock = clock
        self._lead = lead

    async def create(self, request: pb.CreateCampaignRequest) -> pb.CreateCampaignResponse:
        view = await rules.create_campaign(
            self._db,
            spec_of(request.campaign),
            campaign_id=request.campaign_id,
            now=self._clock(),
        )
        return pb.CreateCampaignResponse(campaign=campaign_message(view))

    async def get(self, request: pb.GetCampaignRequest) -> pb.GetCampaignResponse:
        view = await rules.get_campaign(self._db, request.name)
        return pb.GetCampaignResponse(campaign=campaign_message(view))

    async def list_campaigns(self, request: pb.ListCampaignsRequest) -> pb.ListCampaignsResponse:
        page = await rules.list_campaigns(
            self._db, self._tokens, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListCampaignsResponse(
            campaigns=[campaign_message(view) for view in page.campaigns],
            next_page_token=page.next_page_token,
        )

    async def update(self, request: pb.UpdateCampaignRequest) -> pb.UpdateCampaignResponse:
        view = await rules.update_campaign(
            self._db,
            request.campaign.name,
            spec_of(request.campaign),
            tuple(request.update_mask.paths),
            now=self._clock(),
            lead=self._lead,
        )
        return pb.UpdateCampaignResponse(campaign=campaign_message(view))

    async def schedule(self, request: pb.ScheduleCampaignRequest) -> pb.ScheduleCampaignResponse:
        schedule = _schedule(request.schedule, "schedule") if request.HasField("schedule") else None
        view = await rules.schedule_campaign(
            self._db, request.name, schedule, now=self._clock(), lead=self._lead
        )
        return pb.ScheduleCampaignResponse(campaign=campaign_message(view))

    async def cancel(self, request: pb.CancelCampaignRequest) -> pb.CancelCampaignResponse:
        view = await rules.cancel_campaign(self._db, request.name, now=self._clock())
        return pb.CancelCampaignResponse(campaign=campaign_message(view))

    async def preview(
        self, request: pb.PreviewCampaignMessageRequest
    ) -> pb.PreviewCampaignMessageResponse:
        shown = await preview(
            self._db,
            self._links,
            name=request.name,
            contact=request.contact,
            variant=request.variant if request.HasField("variant") else None,
            cap=self._cap,
            now=self._clock(),
        )
        return pb.PreviewCampaignMessageResponse(
            subject=shown.subject,
            body=shown.body,
            variant=shown.variant,
            test_recipient=shown.test_recipient,
            included=shown.exclusion_reason is None,
            exclusion_reason=shown.exclusion_reason or "",
            recorded=_recorded_message(shown.recorded),
        )

    async def choose_winner(
        self, request: pb.ChooseAbTestWinnerRequest
    ) -> pb.ChooseAbTestWinnerResponse:
        view = await rules.choose_winner(self._db, request.name, request.variant, now=self._clock())
        return pb.ChooseAbTestWinnerResponse(campaign=campaign_message(view))


def _recorded_message(recorded: Recorded | None) -> pb.RecordedCampaignDecision | None:
    if recorded is None:
        return None
    message = pb.RecordedCampaignDecision(
        decision=recorded.decision,
        not_sent_reason=recorded.not_sent_reason,
        provider_campaign_id=recorded.provider_campaign_id,
        decide_time=timestamp(recorded.decided_at),
    )
    if recorded.variant is not None:
        message.variant = recorded.variant
    return message


def spec_of(c: campaign_pb2.Campaign) -> CampaignSpec:
    return CampaignSpec(
        display_name=c.display_name,
        channel=_CHANNELS.get(c.channel),
        audience=c.audience,
        content=ContentSpec(c.content.subject, c.content.body) if c.HasField("content") else None,
        ab_test=_ab_test(c.ab_test) if c.HasField("ab_test") else None,
        schedule=_schedule(c.schedule, "campaign.schedule") if c.HasField("schedule") else None,
    )


def _ab_test(t: campaign_pb2.AbTest) -> AbTestSpec:
    return AbTestSpec(
        variants=tuple(ContentSpec(v.subject, v.body) for v in t.variants),
        test_fraction=t.test_fraction or None,
        metric=_METRICS.get(t.metric),
        window=_window(t.window) if t.HasField("window") else None,
        min_sample=t.min_sample or None,
        confidence=t.confidence or None,
    )


def _window(d: duration_pb2.Duration) -> timedelta:
    """The test window; one longer than any allowed (the checks then say OUT_OF_RANGE)
    when it is too long for a timedelta at all."""
    if abs(d.seconds) > MAX_WINDOW.total_seconds():
        return MAX_WINDOW + timedelta(seconds=1)
    return d.ToTimedelta()


def _schedule(s: campaign_pb2.CampaignSchedule, field: str) -> ScheduleSpec:
    which = s.WhichOneof("when")
    if which == "send_time":
        return ScheduleSpec(When.AT, optional_time(s, "send_time", f"{field}.send_time"))
    if which == "local_time":
        local = s.local_time
        return ScheduleSpec(When.LOCAL, None, local.date, local.time, local.default_time_zone)
    if which == "now" and s.now:
        return ScheduleSpec(When.NOW)
    # An empty schedule (or `now: false`) says nothing: never "send at once".
    v = Violations()
    v.add(field, "REQUIRED", "say when: now, a send_time, or a local_time")
    v.raise_if_any()
    raise AssertionError("unreachable")


def campaign_message(view: CampaignView) -> campaign_pb2.Campaign:
    spec = view.spec
    message = campaign_pb2.Campaign(
        name=campaign_name(view.id),
        display_name=spec.display_name,
        channel=(
            _CHANNEL_ENUMS[spec.channel]
            if spec.channel
            else campaign_pb2.CAMPAIGN_CHANNEL_UNSPECIFIED
        ),
        audience=spec.audience,
        state=_STATES[view.state],
        failure=view.failure or "",
        create_time=timestamp(view.created_at),
        update_time=timestamp(view.updated_at),
        send_start_time=timestamp(view.send_start_at),
    )
    if spec.content is not None:
        message.content.CopyFrom(_content(spec.content))
    if spec.ab_test is not None:
        message.ab_test.CopyFrom(_ab_test_message(spec.ab_test.settled()))
        if view.ab_decision is not None:
            message.ab_test.decision.CopyFrom(_decision_message(view.ab_decision))
    if spec.schedule is not None:
        message.schedule.CopyFrom(_schedule_message(spec.schedule))
    if view.counts is not None:
        message.counts.CopyFrom(_counts_message(view.counts))
    message.parts.extend(_part_message(part) for part in view.parts)
    return message


def _decision_message(d: dict[str, Any]) -> campaign_pb2.AbTestDecision:
    return campaign_pb2.AbTestDecision(
        winner=int(d["winner"]),
        manual=bool(d["manual"]),
        significant=bool(d["significant"]),
        reason=str(d["reason"]),
        decide_time=timestamp(datetime.fromisoformat(str(d["decided_at"]))),
    )


def _counts_message(counts: dict[str, int]) -> campaign_pb2.CampaignAudienceCounts:
    return campaign_pb2.CampaignAudienceCounts(
        included=counts.get(INCLUDED, 0),
        excluded_suppressed=counts.get(SUPPRESSED, 0),
        excluded_no_consent=counts.get(NO_CONSENT, 0),
        excluded_capped=counts.get(CAPPED, 0),
        excluded_no_phone=counts.get(NO_PHONE, 0),
        excluded_no_device=counts.get(NO_DEVICE, 0),
    )


def _part_message(part: PartView) -> campaign_pb2.CampaignPart:
    message = campaign_pb2.CampaignPart(
        part=part.part,
        remainder=part.remainder,
        state=part.state,
        recipients=part.recipients,
        imported=part.imported,
        refused=part.refused,
        provider_list_id=part.list_id,
        provider_campaign_id=part.provider_campaign_id,
        error=part.error,
    )
    if part.variant is not None:
        message.variant = part.variant
    send_time = timestamp(part.send_at)
    if send_time is not None:
        message.send_time.CopyFrom(send_time)
    return message


def _content(c: ContentSpec) -> campaign_pb2.CampaignContent:
    return campaign_pb2.CampaignContent(subject=c.subject, body=c.body)


def _ab_test_message(t: AbTestSpec) -> campaign_pb2.AbTest:
    message = campaign_pb2.AbTest(
        variants=[_content(v) for v in t.variants],
        test_fraction=t.test_fraction or 0.0,
        metric=_METRIC_ENUMS[t.metric] if t.metric else campaign_pb2.AB_TEST_METRIC_UNSPECIFIED,
        min_sample=t.min_sample or 0,
        confidence=t.confidence or 0.0,
    )
    window = duration_pb2.Duration()
    window.FromTimedelta(t.window or timedelta())
    message.window.CopyFrom(window)
    return message


def _schedule_message(s: ScheduleSpec) -> campaign_pb2.CampaignSchedule:
    if s.when is When.AT:
        return campaign_pb2.CampaignSchedule(send_time=timestamp(s.send_at))
    if s.when is When.LOCAL:
        local = campaign_pb2.LocalSendTime(
            date=s.local_date, time=s.local_time, default_time_zone=s.default_time_zone
        )
        return campaign_pb2.CampaignSchedule(local_time=local)
    return campaign_pb2.CampaignSchedule(now=True)
