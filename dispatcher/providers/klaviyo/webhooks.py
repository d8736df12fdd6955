"""Registering our webhook receiver at Klaviyo (shared/PROVIDERS-API.md, Klaviyo "Webhooks";
each endpoint 1/s, 15/m; scopes webhooks:read, webhooks:write): create_webhook, and get_webhooks
and delete_webhook to replace the one registered before. `TOPICS` are those the receiver
(dispatcher/webhooks/klaviyo.py) takes; Klaviyo signs each delivery with `secret_key`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from dispatcher.providers.klaviyo.bodies import JsonObject

PATH = "/api/webhooks"
# GET /api/webhooks takes one request a second: a later page waits this long first, as
# starting over after a 429 would meet the limit again at the same page.
PAGE_INTERVAL_S = 1.0
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


def webhook_path(webhook_id: str) -> str:
    return f"{PATH}/{quote(webhook_id, safe='')}"


def listed(document: Any) -> list[tuple[str, str, str]]:
    """(id, name, endpoint_url) of each webhook of a get_webhooks page; ValueError when the
    answer is not a JSON:API collection."""
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise ValueError("the answer has no data array")
    webhooks = (_listed(resource) for resource in data)
    return [webhook for webhook in webhooks if webhook[0]]


def _listed(resource: Any) -> tuple[str, str, str]:
    """("", "", "") for an entry without an id (it could not be deleted anyway)."""
    if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
        return "", "", ""
    attributes = resource.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    name, url = attributes.get("name"), attributes.get("endpoint_url")
    return (
        resource["id"],
        name if isinstance(name, str) else "",
        url if isinstance(url, str) else "",
    )
