"""ActiveCampaign's webhooks: one event per form-encoded POST, unsigned. The
URL carries a secret of ours instead (`/webhooks/activecampaign/<secret>`),
compared in constant time. Pure functions: the receiver does the I/O.

ActiveCampaign sends no event id, and a delivery it repeats is the same bytes:
the SHA-256 of the body is the engagement's external id.

An event our own API calls caused (`initiated_from=api`: a list status we set,
say) is ignored: it would echo our change back as the person's (an unsubscribe
withdrawing a newer re-subscription). The webhook is registered without the
`api` source (dispatcher/webhook_registration.py); this covers one registered
with it.

An automation's email is a campaign of its own at ActiveCampaign
(`campaign[type]=automation`, a `campaign[id]` of its own numbering): its
engagement is the automation's flow message (flow_id `automation[id]`), not a
campaign's (campaign_id empty). ActiveCampaign's documented webhook payload
(PROVIDERS-API.md, "Webhooks": `campaign[id|name|status|type|recipients|
message]`) does not list `automation[id]`: flow metrics for ActiveCampaign
depend on it being there.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl

from marketing.bus.v1 import bus_pb2

from dispatcher.webhooks.reading import (
    DETAIL_CHARS,
    ID_CHARS,
    URL_CHARS,
    bounce_type,
    first,
    parse_time,
    timestamp,
)

PROVIDER = "activecampaign"

# The event types we take; any other is ignored.
TYPES: dict[str, bus_pb2.EngagementType] = {
    "open": bus_pb2.ENGAGEMENT_TYPE_OPENED,
    "click": bus_pb2.ENGAGEMENT_TYPE_CLICKED,
    "bounce": bus_pb2.ENGAGEMENT_TYPE_BOUNCED,
    "unsubscribe": bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED,
    "sms_unsub": bus_pb2.ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED,
    "sent": bus_pb2.ENGAGEMENT_TYPE_SENT,
}


def secret_matches(given: str, secret: str) -> bool:
    """Whether the URL's secret is ours (never when ours is not set)."""
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


def parse(body: bytes) -> bus_pb2.Engagement | None:
    """The engagement of one delivery, with what it has; None for an event type
    we do not take, or one our own API calls caused. Never raises: any bytes
    read as some form."""
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    kind = TYPES.get(fields.get("type", ""))
    if kind is None or _word(fields, "initiated_from") == "api":
        return None
    # Not documented (see above): without it, an automation's message names no flow.
    automation = first(fields, "automation[id]", limit=ID_CHARS)
    by_automation = bool(automation) or _word(fields, "campaign[type]") == "automation"
    found = bus_pb2.Engagement(
        provider=PROVIDER,
        external_id=hashlib.sha256(body).hexdigest(),
        type=kind,
        email=first(fields, "contact[email]"),
        # An SMS unsubscribe names the number that sent STOP.
        phone=first(fields, "sms[phone]", "contact[phone]"),
        campaign_id="" if by_automation else first(fields, "campaign[id]", limit=ID_CHARS),
        flow_id=automation,
        message_id=first(fields, "campaign[message][id]", "message[id]", limit=ID_CHARS),
        url=first(fields, "link[url]", limit=URL_CHARS),
        bounce_type=bounce_type(first(fields, "bounce[type]")),
        detail=first(fields, "bounce[description]", "unsubscribe[reason]", limit=DETAIL_CHARS),
        provider_type=fields["type"],
    )
    occurred = timestamp(parse_time(fields.get("date_time", "")))
    if occurred is not None:
        found.occur_time.CopyFrom(occurred)
    return found


def _word(fields: dict[str, str], key: str) -> str:
    """A field's value to compare: trimmed, lower case."""
    return fields.get(key, "").strip().lower()
