"""Klaviyo's campaigns as the sandbox runs them: made through the API (campaign_routes.py),
sent when due by the sandbox's clock, each recipient's message recorded
(common/campaign_sends.py) and, when a test configured it, engaged with.

A campaign is Draft when made; its send job makes it Scheduled (a static send time still in
the future by the sandbox's clock) or Sending; when due it is sent, and Sent. Sending happens
where flows' messages are decided: before every request and view, after every move of the
clock, and every 0.1 s once a webhook exists (state.py `send_due`).

Who gets it: every profile in one of its included lists and in none of its excluded ones,
once, as the account holds them when it is sent. Each is recorded sent or skipped:

- email: sent only to a profile SUBSCRIBED to email marketing with no suppression (campaigns
  need consent, unlike metric-triggered flows); else skipped: "unsubscribed from email
  marketing", "never subscribed to email marketing", "suppressed (HARD_BOUNCE)", "the profile
  has no email address";
- sms: needs a phone number and SMS marketing SUBSCRIBED ("the profile has no phone number",
  "not subscribed to SMS marketing");
- mobile_push: needs a push token whose enablement is AUTHORIZED or PROVISIONAL (ASSUMED)
  ("the profile has no push token"); `to` is the token.

Subjects and bodies are rendered with Klaviyo's tags (django_render.py) from the profile's
values read at send time: email subject and html (values html-escaped in the html), SMS body,
push title and body. An email carries Klaviyo's own List-Unsubscribe headers (a one-click
https link and a mailto, per message).

Seeded engagement (POST /_sandbox/campaign-engagement), for email campaigns sent after it was
configured (ASSUMED: SMS and push are not engaged, the sandbox has no topics for them): each
sent message's draws (common/campaign_sends.py) are made after the campaign is sent, from a
background thread (campaign_engagement.py): their counts then feed POST
/api/campaign-values-reports, and each is reported through the engagement path
POST /_sandbox/engagement takes
(webhook_events.py `engaged_with`): received_email, then opened_email, then clicked_email
with the body's first link as `URL`, each event's properties naming `$campaign` (the
campaign id) and `$message` (the message's id in GET /_sandbox/campaign-messages).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dispatcher.sandbox.common.campaign_sends import (
    CampaignContent,
    CampaignMessageBook,
    CampaignSchedule,
    SeededEngagement,
    SendBuilder,
    Values,
)
from dispatcher.sandbox.common.clock import SandboxClock
from dispatcher.sandbox.common.recording import iso
from dispatcher.sandbox.klaviyo.campaign_engagement import EngagementReporter, SeededSend
from dispatcher.sandbox.klaviyo.consent import (
    NEVER_SUBSCRIBED,
    SUBSCRIBED,
    AudienceMember,
    ConsentBook,
)
from dispatcher.sandbox.klaviyo.django_render import Slots, Template, compile_template
from dispatcher.sandbox.klaviyo.profiles import ProfileStore
from dispatcher.sandbox.klaviyo.push_tokens import PushTokenBook
from dispatcher.sandbox.klaviyo.webhook_events import ACCOUNT_ID, KlaviyoWebhooks

CAMPAIGNS = "/api/campaigns"
ASSIGN_TEMPLATE = "/api/campaign-message-assign-template"
SEND_JOBS = "/api/campaign-send-jobs"
EMAIL, SMS, PUSH = "email", "sms", "mobile_push"
CHANNELS = (EMAIL, SMS, PUSH)
DRAFT, SCHEDULED, SENDING, SENT = "Draft", "Scheduled", "Sending", "Sent"
# A send job's status, from its campaign's.
JOB_STATUS = {SCHEDULED: "queued", SENDING: "processing", SENT: "complete"}
UNSUBSCRIBE_URL = "https://manage.kmail-lists.com/subscriptions/unsubscribe"
UNSUBSCRIBE_MAILTO = "unsubscribe@klaviyomail.com"


class CampaignRefused(Exception):
    """A request the campaign's state refuses (400 with this detail)."""


@dataclass
class CampaignRecord:
    """A campaign and its one message. `definition` is the message's as given (channel,
    label, content, render_options); `html` and `text` are the assigned template's copy."""

    id: str
    message_id: str
    name: str
    audiences: dict[str, list[str]]
    send_strategy: dict[str, Any]
    definition: dict[str, Any]
    created_s: float
    updated_s: float
    status: str = DRAFT
    scheduled_s: float | None = None  # when the send job scheduled it
    send_s: float | None = None  # when it is (or was) due to go
    template_id: str | None = None
    html: str | None = None
    text: str | None = None
    counts: dict[str, float] = field(default_factory=dict)  # for the values reports

    @property
    def channel(self) -> str:
        return str(self.definition["channel"])

    def due_s(self, now: float) -> float:
        """When a send job made at `now` sends it: its static time, or now."""
        if self.send_strategy.get("method") == "static":
            return max(now, float(self.send_strategy["datetime_s"]))
        return now


@dataclass(frozen=True)
class NewCampaign:
    """A validated POST /api/campaigns body (campaign_routes.py)."""

    name: str
    included: list[str]
    excluded: list[str]
    send_strategy: dict[str, Any]  # with "datetime_s" (epoch s) for a static one
    definition: dict[str, Any]


class KlaviyoCampaigns:
    """The account's campaigns, their sending, and the messages they sent."""

    def __init__(
        self,
        clock: SandboxClock,
        profiles: ProfileStore,
        consent: ConsentBook,
        push_tokens: PushTokenBook,
        webhooks: KlaviyoWebhooks,
        new_id: Callable[[float], str],
    ) -> None:
        self._clock = clock
        self._profiles = profiles
        self._consent = consent
        self._push_tokens = push_tokens
        self._webhooks = webhooks
        self._new_id = new_id  # a ULID-like id at a time (catalogue.py)
        self._lock = threading.Lock()  # the records
        self._sending = threading.Lock()  # one send at a time; a view waits for it
        self._campaigns: dict[str, CampaignRecord] = {}
        self._by_message: dict[str, str] = {}  # message id -> campaign id
        self.schedule = CampaignSchedule()
        self.book = CampaignMessageBook()
        self.engagement = SeededEngagement()
        self.reporter = EngagementReporter(webhooks, self._counted)

    # the API

    def create(self, new: NewCampaign, now: float) -> CampaignRecord:
        audiences = {"included": new.included, "excluded": new.excluded}
        record = CampaignRecord(
            self._new_id(now),
            self._new_id(now),
            new.name,
            audiences,
            new.send_strategy,
            new.definition,
            now,
            now,
        )
        with self._lock:
            self._campaigns[record.id] = record
            self._by_message[record.message_id] = record.id
            return replace(record)

    def get(self, campaign_id: str) -> CampaignRecord | None:
        """A copy of the campaign (None when unknown)."""
        with self._lock:
            record = self._campaigns.get(campaign_id)
            return None if record is None else replace(record)

    def of_message(self, message_id: str) -> CampaignRecord | None:
        with self._lock:
            campaign_id = self._by_message.get(message_id)
        return None if campaign_id is None else self.get(campaign_id)

    def all(self) -> list[CampaignRecord]:
        with self._lock:
            return [replace(record) for record in self._campaigns.values()]

    def assign(
        self, message_id: str, template_id: str, html: str | None, text: str | None, now: float
    ) -> CampaignRecord:
        """The template's html and text copied into the message (CampaignRefused: not an
        email message, or its campaign is no longer a draft)."""
        with self._lock:
            record = self._campaigns[self._by_message[message_id]]
            if record.channel != EMAIL:
                raise CampaignRefused("Only email messages take a template.")
            if record.status != DRAFT:
                raise CampaignRefused(f"The campaign is {record.status}, no longer a Draft.")
            record.template_id, record.html, record.text = template_id, html, text
            record.updated_s = now
            return replace(record)

    def start_send(self, campaign_id: str, now: float) -> CampaignRecord:
        """A send job: the campaign Scheduled (due later) or Sending (due now). KeyError:
        unknown; CampaignRefused: not a Draft (a second send job), or an email message
        without a template."""
        with self._lock:
            record = self._campaigns[campaign_id]
            if record.status != DRAFT:
                raise CampaignRefused(
                    f"The campaign is {record.status}: it has a send job already, and only a "
                    "Draft campaign can be sent."
                )
            if record.channel == EMAIL and record.html is None:
                raise CampaignRefused("The campaign's email message has no template assigned.")
            due = record.due_s(now)
            record.status = SCHEDULED if due > now else SENDING
            record.scheduled_s, record.send_s, record.updated_s = now, due, now
            self.schedule.add(record.id, due)
            return replace(record)

    # the sending

    def send_due(self) -> None:
        """Send every campaign due by the clock. A caller that finds a send under way waits
        for it, so a view never shows half a campaign."""
        with self._sending:
            for campaign_id, due_s in self.schedule.take_due(self._clock()):
                self._send(campaign_id, due_s)

    def _send(self, campaign_id: str, due_s: float) -> None:
        campaign = self.get(campaign_id)
        if campaign is None:
            return
        seed = self.engagement.current()  # the configuration in force when it goes out
        recorded = self.book.record(self._messages(campaign, due_s))
        with self._lock:
            record = self._campaigns[campaign_id]
            record.status, record.send_s, record.updated_s = SENT, due_s, due_s
            record.counts = {"recipients": float(recorded.sent_count)}
        if seed is not None and campaign.channel == EMAIL:
            self.reporter.submit(SeededSend(campaign_id, recorded, seed))

    def _messages(self, campaign: CampaignRecord, due_s: float) -> SendBuilder:
        """Each member's message, decided and recorded with their values of now."""
        content, names = _content(campaign)
        members = self._consent.audience(
            campaign.audiences["included"], campaign.audiences["excluded"]
        )
        values = self._profiles.values_many(((m.email, m.phone_number) for m in members), names)
        builder = SendBuilder(campaign.id, campaign.name, campaign.channel, content, due_s)
        decide = self._decider(campaign.channel)
        for member, member_values in zip(members, values, strict=True):
            to, reason = decide(member)
            if reason is None:
                builder.sent(member.email, to, member_values)
            else:
                builder.skipped(member.email, to, member_values, reason)
        return builder

    def _decider(self, channel: str) -> Callable[[AudienceMember], tuple[str | None, str | None]]:
        """How a member is judged on `channel`: (where it goes, why not: None to send)."""
        if channel == SMS:
            return _sms_verdict
        if channel == PUSH:
            devices = self._push_tokens.devices()
            return lambda member: _push_verdict(member, devices)
        return _email_verdict

    def _counted(self, campaign_id: str, counts: dict[str, float]) -> None:
        """A campaign's seeded engagements are drawn: the values reports count them."""
        with self._lock:
            self._campaigns[campaign_id].counts |= counts

    def wait_reported(self, timeout_s: float) -> bool:
        """Wait until every seeded engagement drawn is reported; False if one still is not."""
        return self.reporter.wait_idle(timeout_s)

    def clear(self) -> None:
        """Forget the recorded messages, the engagement configuration and what is not
        reported yet (the campaigns are the account's, and stay)."""
        self.reporter.drop()
        self.book.clear()
        self.engagement.configure(None)

    def close(self) -> None:
        self.reporter.close()


def _email_verdict(member: AudienceMember) -> tuple[str | None, str | None]:
    if not member.email:
        return None, "the profile has no email address"
    if member.email_consent != SUBSCRIBED:
        never = member.email_consent == NEVER_SUBSCRIBED
        return member.email, (
            "never subscribed to email marketing" if never else "unsubscribed from email marketing"
        )
    if member.suppressions:
        return member.email, f"suppressed ({', '.join(member.suppressions)})"
    return member.email, None


def _sms_verdict(member: AudienceMember) -> tuple[str | None, str | None]:
    if not member.phone_number:
        return None, "the profile has no phone number"
    if member.sms_consent != SUBSCRIBED:
        return member.phone_number, "not subscribed to SMS marketing"
    return member.phone_number, None


def _push_verdict(member: AudienceMember, devices: dict[str, str]) -> tuple[str | None, str | None]:
    token = devices.get((member.email or "").lower()) or devices.get(f"phone:{member.phone_number}")
    return (token, None) if token else (None, "the profile has no push token")


def _content(campaign: CampaignRecord) -> tuple[CampaignContent, list[str]]:
    """The campaign's compiled subject and body, and the values they read per recipient."""
    slots = Slots()
    content = campaign.definition["content"]
    if campaign.channel == EMAIL:
        subject_text, body_text = content["subject"], campaign.html or ""
    elif campaign.channel == PUSH:
        subject_text, body_text = content["title"], content["body"]
    else:
        subject_text, body_text = "", content["body"]
    subject = compile_template(subject_text, slots)
    body = compile_template(body_text, slots)
    escape = campaign.channel == EMAIL  # html: values escaped
    compiled = CampaignContent(
        subject_template=subject_text,
        subject=_renderer(subject, escape=False),
        body=_renderer(body, escape=escape),
        headers=_unsubscribe_headers(campaign.id) if campaign.channel == EMAIL else None,
    )
    return compiled, slots.names


def _renderer(template: Template, *, escape: bool) -> Callable[[Values], str]:
    return lambda values: template.render(values, escape=escape)


def _unsubscribe_headers(campaign_id: str) -> Callable[[int, str | None], dict[str, str]]:
    """Klaviyo's List-Unsubscribe headers of a campaign's message: a one-click https link
    (RFC 8058) and a mailto, both naming the message by a token (made, not stored)."""

    def headers(message_id: int, email: str | None) -> dict[str, str]:
        token = hashlib.sha256(f"{campaign_id}:{message_id}:{email}".encode()).hexdigest()[:24]
        link = f"{UNSUBSCRIBE_URL}?a={ACCOUNT_ID}&c={campaign_id}&m={message_id}&k={token}"
        mailto = f"mailto:{UNSUBSCRIBE_MAILTO}?subject=unsubscribe-{token}"
        return {
            "List-Unsubscribe": f"<{link}>, <{mailto}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }

    return headers


def campaign_resource(record: CampaignRecord, base: str) -> dict[str, Any]:
    """As GET /api/campaigns[/{id}] and POST /api/campaigns answer it."""
    strategy = {k: v for k, v in record.send_strategy.items() if k != "datetime_s"}
    attributes = {
        "name": record.name,
        "status": record.status,
        "archived": False,
        "audiences": dict(record.audiences),
        "send_options": {"use_smart_sending": True},
        "tracking_options": {
            "add_tracking_params": False,
            "is_tracking_clicks": True,
            "is_tracking_opens": True,
        },
        "send_strategy": strategy,
        "created_at": iso(record.created_s),
        "scheduled_at": None if record.scheduled_s is None else iso(record.scheduled_s),
        "updated_at": iso(record.updated_s),
        "send_time": None if record.send_s is None else iso(record.send_s),
    }
    messages = {"data": [{"type": "campaign-message", "id": record.message_id}]}
    return {
        "type": "campaign",
        "id": record.id,
        "attributes": attributes,
        "relationships": {"campaign-messages": messages, "tags": {"data": []}},
        "links": {"self": f"{base}/api/campaigns/{record.id}/"},
    }


def message_resource(record: CampaignRecord, base: str) -> dict[str, Any]:
    """The campaign's message, as the assign-template call answers it."""
    attributes = {
        "definition": record.definition,
        "send_times": [] if record.send_s is None else [{"datetime": iso(record.send_s)}],
        "created_at": iso(record.created_s),
        "updated_at": iso(record.updated_s),
    }
    template = (
        None if record.template_id is None else {"type": "template", "id": record.template_id}
    )
    relationships = {
        "campaign": {"data": {"type": "campaign", "id": record.id}},
        "template": {"data": template},
    }
    return {
        "type": "campaign-message",
        "id": record.message_id,
        "attributes": attributes,
        "relationships": relationships,
        "links": {"self": f"{base}/api/campaign-messages/{record.message_id}/"},
    }
