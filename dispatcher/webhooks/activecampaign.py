"""ActiveCampaign's webhooks: one event per form-encoded POST, unsigned. The
URL carries a secret of ours instead (`/webhooks/activecampaign/<secret>`),
compared in constant time. Pure functions: the receiver does the I/O.

ActiveCampaign sends no event id, and a delivery it repeats is the same bytes:
the SHA-256 of the body is the engagement's external id.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl

from marketing.bus.v1 import bus_pb2

from dispatcher.webhooks.reading import bounce_type, first, parse_time, timestamp

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
    we do not take. Never raises: any bytes read as some form."""
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    kind = TYPES.get(fields.get("type", ""))
    if kind is None:
        return None
    found = bus_pb2.Engagement(
        provider=PROVIDER,
        external_id=hashlib.sha256(body).hexdigest(),
        type=kind,
        email=first(fields, "contact[email]"),
        # An SMS unsubscribe names the number that sent STOP.
        phone=first(fields, "sms[phone]", "contact[phone]"),
        campaign_id=first(fields, "campaign[id]"),
        flow_id=first(fields, "automation[id]"),
        message_id=first(fields, "campaign[message][id]", "message[id]"),
        url=first(fields, "link[url]"),
        bounce_type=bounce_type(first(fields, "bounce[type]")),
        detail=first(fields, "bounce[description]", "unsubscribe[reason]"),
        provider_type=fields["type"],
    )
    occurred = timestamp(parse_time(fields.get("date_time", "")))
    if occurred is not None:
        found.occur_time.CopyFrom(occurred)
    return found
