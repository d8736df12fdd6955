"""Registering our webhook receiver at Klaviyo: create_webhook (shared/PROVIDERS-API.md,
Klaviyo "Webhooks"; 1/s, 15/m, scope webhooks:write). `TOPICS` are those the receiver
(dispatcher/webhooks/klaviyo.py) takes; Klaviyo signs each delivery with `secret_key`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dispatcher.providers.klaviyo.bodies import JsonObject

PATH = "/api/webhooks"
TOPICS = (
    "event:klaviyo.received_email",
    "event:klaviyo.opened_email",
    "event:klaviyo.clicked_email",
    "event:klaviyo.bounced_email",
    "event:klaviyo.marked_email_as_spam",
    "event:klaviyo.unsubscribed_from_email_marketing",
    "event:klaviyo.unsubscribed_from_sms_marketing",
    "event:klaviyo.sent_sms",
)


def create_body(
    name: str, endpoint_url: str, secret: str, topics: Sequence[str], description: str = ""
) -> JsonObject:
    attributes = {"name": name, "endpoint_url": endpoint_url, "secret_key": secret}
    if description:
        attributes["description"] = description
    topic_data = [{"type": "webhook-topic", "id": topic} for topic in topics]
    return {
        "data": {
            "type": "webhook",
            "attributes": attributes,
            "relationships": {"webhook-topics": {"data": topic_data}},
        }
    }


def created_id(document: Any) -> str:
    """data.id of create_webhook's answer; ValueError when it has none."""
    data = document.get("data") if isinstance(document, dict) else None
    webhook_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(webhook_id, str) or not webhook_id:
        raise ValueError("no data.id in the answer")
    return webhook_id
