"""Klaviyo's system webhooks: checking a delivery is Klaviyo's, and reading its
engagements. Pure functions: the receiver does the I/O.

A delivery is signed: `Klaviyo-Signature` is the hex HMAC-SHA256, keyed with
the webhook's secret, of the raw body immediately followed by the
`Klaviyo-Timestamp` header. The body names the webhook again
(`meta.klaviyo_webhook_id`), which must equal the `Klaviyo-Webhook-Id` header
(the signature does not cover the headers). Its `data` holds the events, each
`{external_id, topic, payload}` with `payload` shaped like Klaviyo's Get Event
response (the event, with its profile in `included`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from marketing.bus.v1 import bus_pb2

from dispatcher.webhooks.errors import Malformed, Refused
from dispatcher.webhooks.reading import (
    DETAIL_CHARS,
    ID_CHARS,
    URL_CHARS,
    bounce_type,
    epoch_time,
    first,
    mapping,
    parse_time,
    text,
    timestamp,
)

PROVIDER = "klaviyo"
WEBHOOK_ID_HEADER = "Klaviyo-Webhook-Id"
TIMESTAMP_HEADER = "Klaviyo-Timestamp"
SIGNATURE_HEADER = "Klaviyo-Signature"

# The topics we take; any other is ignored. "Received Email" is Klaviyo's
# delivery metric; its guide names the topic `email_delivered` in an example,
# so that name is taken too.
TOPICS: dict[str, bus_pb2.EngagementType] = {
    "event:klaviyo.received_email": bus_pb2.ENGAGEMENT_TYPE_DELIVERED,
    "event:klaviyo.email_delivered": bus_pb2.ENGAGEMENT_TYPE_DELIVERED,
    "event:klaviyo.opened_email": bus_pb2.ENGAGEMENT_TYPE_OPENED,
    "event:klaviyo.clicked_email": bus_pb2.ENGAGEMENT_TYPE_CLICKED,
    "event:klaviyo.bounced_email": bus_pb2.ENGAGEMENT_TYPE_BOUNCED,
    "event:klaviyo.marked_email_as_spam": bus_pb2.ENGAGEMENT_TYPE_SPAM_COMPLAINT,
    "event:klaviyo.unsubscribed_from_email_marketing": bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED,
    "event:klaviyo.unsubscribed_from_email": bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED,
    "event:klaviyo.unsubscribed_from_sms_marketing": bus_pb2.ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED,
    "event:klaviyo.sent_sms": bus_pb2.ENGAGEMENT_TYPE_SENT,
}


def signature(secret: str, body: bytes, timestamp: str) -> str:
    """What Klaviyo puts in `Klaviyo-Signature` for `body` sent at `timestamp`."""
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def verify(
    body: bytes, headers: Mapping[str, str], *, secret: str, now: datetime, window_s: float
) -> str:
    """The `Klaviyo-Webhook-Id` of a delivery Klaviyo signed with `secret` no more
    than `window_s` from `now` (either way). Refused: any other."""
    if not secret:
        raise Refused("KLAVIYO_WEBHOOK_SECRET is not set")
    webhook_id, timestamp, given = (
        headers.get(name, "") for name in (WEBHOOK_ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    )
    if not (webhook_id and timestamp and given):
        raise Refused("a Klaviyo-Webhook-Id, -Timestamp or -Signature header is missing")
    sent = sent_time(timestamp)
    if sent is None:
        raise Refused("the Klaviyo-Timestamp header is not a time")
    expected = signature(secret, body, timestamp).encode()
    if not hmac.compare_digest(expected, given.strip().lower().encode()):
        raise Refused("the signature does not match (another secret, or an altered body)")
    if abs((now - sent).total_seconds()) > window_s:
        raise Refused(f"sent at {sent.isoformat()}, outside the replay window of {window_s:g} s")
    return webhook_id


def sent_time(timestamp: str) -> datetime | None:
    """`Klaviyo-Timestamp` ("when the webhook request was sent"): integer seconds
    since the epoch or an ISO-8601 time."""
    if not timestamp.isascii():  # signed as bytes: only ASCII reads back the same
        return None
    return epoch_time(timestamp) if timestamp.strip().isdigit() else parse_time(timestamp)


def parse(body: bytes, webhook_id: str) -> list[bus_pb2.Engagement]:
    """The engagements of a verified delivery, once each (by external id), in its
    order; events of other topics, or without an id, are left out. Malformed: not
    a JSON object with a `data` array. Refused: the body names another webhook."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"the body is not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise Malformed("the body is not a JSON object")
    if text(mapping(document.get("meta")).get("klaviyo_webhook_id")) != webhook_id:
        raise Refused("meta.klaviyo_webhook_id differs from the Klaviyo-Webhook-Id header")
    items = document.get("data")
    if not isinstance(items, list):
        raise Malformed("the body has no data array")
    engagements: dict[str, bus_pb2.Engagement] = {}
    for item in items:
        found = engagement(item)
        if found is not None:
            engagements.setdefault(found.external_id, found)
    return list(engagements.values())


def engagement(item: object) -> bus_pb2.Engagement | None:
    """One `data` item as an Engagement, with what it has; None without an
    external id or with a topic we do not take."""
    item = mapping(item)
    external_id, topic = text(item.get("external_id"), ID_CHARS), text(item.get("topic"))
    kind = TOPICS.get(topic)
    if not external_id or kind is None:
        return None
    payload = mapping(item.get("payload"))
    event = mapping(payload.get("data"))
    attributes = mapping(event.get("attributes"))
    props = mapping(attributes.get("event_properties"))
    profile = _profile(payload, event)
    found = bus_pb2.Engagement(
        provider=PROVIDER,
        external_id=external_id,
        type=kind,
        email=text(profile.get("email")) or first(props, "$email", "email"),
        phone=text(profile.get("phone_number")) or first(props, "$phone_number"),
        campaign_id=first(props, "$campaign", "Campaign ID", limit=ID_CHARS),
        flow_id=first(props, "$flow", limit=ID_CHARS),
        message_id=first(props, "$message", limit=ID_CHARS),
        url=first(props, "URL", limit=URL_CHARS),
        bounce_type=bounce_type(first(props, "Bounce Type")),
        detail=first(props, "Reason", "$reason", "Bounce Reason", limit=DETAIL_CHARS),
        provider_type=topic,
    )
    occurred = timestamp(
        parse_time(text(attributes.get("datetime"))) or epoch_time(attributes.get("timestamp"))
    )
    if occurred is not None:
        found.occur_time.CopyFrom(occurred)
    return found


def _profile(payload: Mapping[str, Any], event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The attributes of the event's profile in `included`: the one the event
    names; when it names none, the only profile there. Empty otherwise (never
    another person's)."""
    wanted = text(
        mapping(mapping(mapping(event.get("relationships")).get("profile")).get("data")).get("id")
    )
    included = payload.get("included")
    items = included if isinstance(included, list) else []
    profiles = [mapping(p) for p in items if mapping(p).get("type") == "profile"]
    if wanted:
        chosen = next((p for p in profiles if text(p.get("id")) == wanted), None)
    else:
        chosen = profiles[0] if len(profiles) == 1 else None
    return mapping(chosen.get("attributes")) if chosen is not None else {}
