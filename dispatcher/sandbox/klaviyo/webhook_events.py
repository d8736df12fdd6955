"""Klaviyo's webhooks, sent by the sandbox (the webhooks themselves: webhook_book.py).

What is reported, to every enabled webhook subscribed to the topic:

- a flow message sent (flows.py): event:klaviyo.received_email for an email,
  event:klaviyo.sent_sms for an SMS, with `$message` (the message's id in
  GET /_sandbox/messages) and `$flow` (the flow's name, its key here);
- an engagement told through POST /_sandbox/engagement (common/engagement.py): delivered
  (received_email), opened_email, clicked_email (`URL`), bounced_email (`Bounce Type` hard or
  soft), marked_email_as_spam, unsubscribed_from_email_marketing and
  unsubscribed_from_sms_marketing, with the message's `$message` and `$flow` and the given
  `$campaign`. Its effect on the account comes first, where Klaviyo's is (consent.py):
  an unsubscribe sets email marketing consent UNSUBSCRIBED (with an UNSUBSCRIBE suppression,
  as the consent jobs' unsubscribe does here), a spam complaint too with a SPAM_COMPLAINT
  suppression, a hard bounce adds a HARD_BOUNCE suppression, an SMS unsubscribe sets SMS
  marketing consent UNSUBSCRIBED. A person the account holds no profile for gets one.

A delivery (shared/PROVIDERS.md, "Webhooks (outgoing from Klaviyo)"): a POST of JSON

    {"data": [{"external_id", "topic", "payload"}], "meta": {"klaviyo_account_id",
     "klaviyo_webhook_id", "timestamp"}}

with `payload` shaped as Klaviyo's Get Event answer with the profile included:
{"data": {"type": "event", "id": <external_id>, "attributes": {"datetime", "timestamp" (epoch
s), "uuid", "event_properties"}, "relationships": {"profile": {"data": {"type": "profile",
"id"}}}}, "included": [{"type": "profile", "id", "attributes": {"email", "phone_number"}}]},
and the headers `Klaviyo-Webhook-Id`, `Klaviyo-Timestamp` (ISO 8601 UTC, the sandbox's clock
when sent; `meta.timestamp` the same) and `Klaviyo-Signature`, the hex HMAC-SHA256 keyed with
the webhook's secret_key of the raw body immediately followed by the timestamp header's bytes.
Events pending for one webhook within 0.2 s (up to 100) go in one request; a request answered
other than 2xx, or not answered, is sent again with the same events (same external_ids) after
1, 2 and 4 s (`backoff_s`), 4 attempts in all: deliveries are at least once, as Klaviyo's.
BEYOND (not published): the batch window, the batch size and the retry schedule are the
sandbox's choices."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from dispatcher.sandbox.common import engagement as kinds
from dispatcher.sandbox.common.clock import SandboxClock
from dispatcher.sandbox.common.engagement import Engagement, chosen_message
from dispatcher.sandbox.common.flows import Message
from dispatcher.sandbox.common.recording import iso
from dispatcher.sandbox.common.webhooks import (
    DeliveryLog,
    Outgoing,
    Policy,
    Request,
    Target,
    Ticker,
    WebhookSender,
)
from dispatcher.sandbox.klaviyo import webhook_book as topics
from dispatcher.sandbox.klaviyo.consent import (
    HARD_BOUNCE,
    SPAM_COMPLAINT,
    UNSUBSCRIBE,
    ConsentBook,
)
from dispatcher.sandbox.klaviyo.profiles import ProfileStore, fake_profile_id, identity_keys
from dispatcher.sandbox.klaviyo.webhook_book import NewWebhook, WebhookBook, WebhookRecord

ACCOUNT_ID = "SbxAcc"  # what meta.klaviyo_account_id says (Klaviyo's are 6 characters)
DEFAULT_BACKOFF_S = 1.0
POLICY = Policy(batch_s=0.2, max_batch=100, max_attempts=4, backoff_s=DEFAULT_BACKOFF_S)
TOPIC_OF = {
    kinds.DELIVERED: topics.RECEIVED_EMAIL,
    kinds.OPENED: topics.OPENED_EMAIL,
    kinds.CLICKED: topics.CLICKED_EMAIL,
    kinds.BOUNCED: topics.BOUNCED_EMAIL,
    kinds.SPAM: topics.MARKED_AS_SPAM,
    kinds.UNSUBSCRIBED: topics.UNSUBSCRIBED_EMAIL,
    kinds.SMS_UNSUBSCRIBED: topics.UNSUBSCRIBED_SMS,
}
# An engagement's effect on consent: the channel unsubscribed, the suppression added.
_EFFECTS: dict[str, tuple[str | None, str | None]] = {
    kinds.UNSUBSCRIBED: ("email", UNSUBSCRIBE),
    kinds.SPAM: ("email", SPAM_COMPLAINT),
    kinds.SMS_UNSUBSCRIBED: ("sms", None),
}


class KlaviyoWebhooks:
    """The account's webhooks and what is sent to them."""

    def __init__(
        self,
        clock: SandboxClock,
        profiles: ProfileStore,
        consent: ConsentBook,
        *,
        backoff_s: float = DEFAULT_BACKOFF_S,
    ) -> None:
        self.book = WebhookBook()
        self._clock = clock
        self._profiles = profiles
        self._consent = consent
        policy = replace(POLICY, backoff_s=backoff_s)
        self.sender = WebhookSender(
            policy, encode, self._target, clock=clock, name="klaviyo-sandbox-webhooks"
        )
        self._ticker: Ticker | None = None

    def ticking(self, send_due: Callable[[], None]) -> None:
        """Once a webhook exists, decide due messages every TICK_S (`send_due`)."""
        self._ticker = Ticker(send_due, name="klaviyo-sandbox-flows")

    def create(self, new: NewWebhook, at: str) -> WebhookRecord:
        record = self.book.create(new, at)
        if self._ticker is not None:
            self._ticker.start()
        return record

    @property
    def deliveries(self) -> DeliveryLog:
        return self.sender.log

    def message_sent(self, message: Message) -> None:
        """A flow's message went out (called with the flow book held: takes no flow lock)."""
        topic = topics.RECEIVED_EMAIL if message.step.channel == "email" else topics.SENT_SMS
        if not self.book.subscribed(topic):  # the common case: nothing to build
            return
        person = message.run.person
        properties = {"$message": str(message.id), "$flow": message.run.flow.key}
        self._report(topic, person.email, person.phone, properties, message.due_s)

    def observable(self, kind: str) -> bool:
        """Whether an engagement of this kind (common/engagement.py) would change anything:
        a webhook subscribed to its topic, or an effect on the account. A campaign's seeded
        delivered/opened/clicked to nobody listening need not take the path at all."""
        return (
            bool(self.book.subscribed(TOPIC_OF[kind])) or kind in _EFFECTS or kind == kinds.BOUNCED
        )

    def engaged(self, engagement: Engagement, sent: list[dict[str, Any]]) -> dict[str, Any]:
        """Apply an engagement to the account and report it; what POST /_sandbox/engagement
        answers: {"external_ids", "webhooks"}. ValueError: a message_id naming no message sent,
        an SMS unsubscribe without a phone number."""
        message = chosen_message(engagement, sent)
        about = (
            {} if message is None else {"$message": str(message["id"]), "$flow": message["flow"]}
        )
        return self.engaged_with(engagement, about)

    def engaged_with(
        self, engagement: Engagement, message_properties: dict[str, Any]
    ) -> dict[str, Any]:
        """`engaged` with the message named already: `message_properties` say which
        (`$message` with `$flow` for a flow's; a campaign's names its campaign in the
        engagement's `campaign_id`). The path every engagement takes, a campaign's seeded
        ones too (campaigns.py)."""
        now, email = self._clock(), engagement.email
        stored = self._profiles.identity("email", email)
        phone = engagement.phone or (stored or {}).get("phone_number")
        if engagement.type == kinds.SMS_UNSUBSCRIBED and not phone:
            raise ValueError("an SMS unsubscribe needs a phone: the profile has none")
        identity = {"email": email, **({"phone_number": phone} if phone else {})}
        if stored is None or (phone and not stored.get("phone_number")):
            self._profiles.upsert(identity, iso(now))
        self._apply(identity, engagement, now)
        topic = TOPIC_OF[engagement.type]
        properties = message_properties | _properties(engagement)
        external_ids = self._report(topic, email, phone, properties, now)
        webhooks = [w.id for w in self.book.subscribed(topic)] if external_ids else []
        return {"external_ids": external_ids, "webhooks": webhooks}

    def _apply(self, identity: dict[str, Any], engagement: Engagement, now: float) -> None:
        channel, suppression = _EFFECTS.get(engagement.type, (None, None))
        if engagement.hard_bounce:
            suppression = HARD_BOUNCE
        if channel is not None or suppression is not None:
            self._consent.engaged(identity, channel, suppression, iso(now))

    def _report(
        self,
        topic: str,
        email: str | None,
        phone: str | None,
        properties: dict[str, Any],
        at_s: float,
    ) -> list[str]:
        """Queue the event for every webhook subscribed; its external id ([] for none)."""
        webhooks = self.book.subscribed(topic)
        if not webhooks:
            return []
        event_id = _random_uuid().hex.upper()[:26]
        stored = self._profiles.identity("email", email) if email else None
        profile_id = (stored or {}).get("id") or fake_profile_id(
            identity_keys({"email": email, "phone_number": phone})[0]
        )
        event = _Event(
            event_id, str(_random_uuid()), topic, at_s, properties, profile_id, email, phone
        )
        item = Outgoing(event_id, event)
        for webhook in webhooks:
            self.sender.submit(webhook.id, [item])
        return [event_id]

    def _target(self, webhook_id: str) -> Target | None:
        record = self.book.get(webhook_id)
        if record is None or not record.enabled:
            return None
        return Target(record.id, record.endpoint_url, record.secret_key)

    def clear(self) -> None:
        """Forget the webhooks, what was waiting to go to them and every attempt recorded."""
        self.book.clear()
        self.sender.drop_pending()
        self.sender.log.clear()

    def close(self) -> None:
        if self._ticker is not None:
            self._ticker.close()
        self.sender.close()


# Event ids need to be unique, not unguessable: drawn from one generator seeded once rather
# than by uuid4, whose system call per id was most of a seeded campaign's reporting time.
_IDS = random.Random()


def _random_uuid() -> uuid.UUID:
    return uuid.UUID(int=_IDS.getrandbits(128), version=4)


def _properties(engagement: Engagement) -> dict[str, Any]:
    """What the engagement itself tells (the message it is about aside)."""
    properties: dict[str, Any] = {}
    if engagement.campaign_id:
        properties["$campaign"] = engagement.campaign_id
    if engagement.url:
        properties["URL"] = engagement.url
    if engagement.bounce_type:
        properties["Bounce Type"] = engagement.bounce_type
    if engagement.reason:
        properties["Reason"] = engagement.reason
    return properties


@dataclass(frozen=True, slots=True)
class _Event:
    """An event waiting to go to a webhook, as few objects as it can be: its `data` item is
    built when a request is made of it (a campaign's seeded engagements may be half a
    million waiting at once). Each attempt builds the same item: the same ids and uuid."""

    event_id: str
    uuid: str
    topic: str
    at_s: float
    properties: dict[str, Any]
    profile_id: str
    email: str | None
    phone: str | None

    def item(self) -> dict[str, Any]:
        """The delivery's `data` item: {external_id, topic, payload}, the payload Klaviyo's
        Get Event answer with the profile included."""
        attributes = {
            "datetime": iso(self.at_s),
            "timestamp": int(self.at_s),
            "uuid": self.uuid,
            "event_properties": self.properties,
        }
        profile = {"type": "profile", "id": self.profile_id}
        event = {"type": "event", "id": self.event_id, "attributes": attributes}
        event["relationships"] = {"profile": {"data": profile}}
        included = profile | {"attributes": {"email": self.email, "phone_number": self.phone}}
        payload = {"data": event, "included": [included]}
        return {"external_id": self.event_id, "topic": self.topic, "payload": payload}


def encode(target: Target, items: Sequence[Outgoing], sent_at: float) -> Request:
    """A delivery of `items` to the webhook, signed with its secret. The
    timestamp is the wall clock's, whatever the sandbox's clock says: it says
    when the request is sent, and receivers refuse one outside their replay
    window (a test that moved the sandbox's clock on an hour would see every
    later delivery refused)."""
    del sent_at  # the sandbox's clock: event times follow it, sending does not
    timestamp = datetime.now(UTC).isoformat(timespec="seconds")
    meta = {
        "klaviyo_account_id": ACCOUNT_ID,
        "klaviyo_webhook_id": target.webhook_id,
        "timestamp": timestamp,
    }
    body = json.dumps({"data": [item.content.item() for item in items], "meta": meta}).encode()
    headers = {
        "Content-Type": "application/json",
        "Klaviyo-Webhook-Id": target.webhook_id,
        "Klaviyo-Timestamp": timestamp,
        "Klaviyo-Signature": signature(target.secret, body, timestamp),
    }
    return Request(body, headers)


def signature(secret: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
