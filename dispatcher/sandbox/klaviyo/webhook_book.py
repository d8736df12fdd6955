"""The account's webhooks, as create_webhook makes them (shared/PROVIDERS-API.md, Klaviyo
"Webhooks"): a name, an optional description, the endpoint URL, the secret key that signs
deliveries and the topics it is subscribed to. Served by webhook_routes.py; deliveries are
webhook_events.py's.

The body create_webhook takes, checked as Klaviyo checks a body (400 `invalid` naming the
pointer):

    {"data": {"type": "webhook", "attributes": {"name", "description"?, "endpoint_url",
     "secret_key"}, "relationships": {"webhook-topics": {"data": [{"type": "webhook-topic",
     "id": "event:klaviyo.opened_email"}, ...]}}}}

- `endpoint_url` must be https, as Klaviyo's, EXCEPT on a loopback host (127.0.0.1,
  localhost, ::1), which the sandbox also takes over http so that tests can receive
  deliveries without certificates.
- The topics are those of GET /api/webhook-topics (TOPICS: the ones the sandbox sends).

BEYOND (the page does not say; the sandbox's choice): Klaviyo shows `endpoint_url` truncated
in its answers, in a form not documented, so the sandbox shows it whole; a topic named twice
counts once; an account may hold any number of webhooks."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dispatcher.sandbox.klaviyo.validation import Invalid

WEBHOOKS = "/api/webhooks"
WEBHOOK_TOPICS = "/api/webhook-topics"
RECEIVED_EMAIL = "event:klaviyo.received_email"
OPENED_EMAIL = "event:klaviyo.opened_email"
CLICKED_EMAIL = "event:klaviyo.clicked_email"
BOUNCED_EMAIL = "event:klaviyo.bounced_email"
MARKED_AS_SPAM = "event:klaviyo.marked_email_as_spam"
UNSUBSCRIBED_EMAIL = "event:klaviyo.unsubscribed_from_email_marketing"
UNSUBSCRIBED_SMS = "event:klaviyo.unsubscribed_from_sms_marketing"
SENT_SMS = "event:klaviyo.sent_sms"
TOPICS = (
    RECEIVED_EMAIL,
    OPENED_EMAIL,
    CLICKED_EMAIL,
    BOUNCED_EMAIL,
    MARKED_AS_SPAM,
    UNSUBSCRIBED_EMAIL,
    UNSUBSCRIBED_SMS,
    SENT_SMS,
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_NAME = 255
_ATTRIBUTES = "/data/attributes"
_TOPICS_POINTER = "/data/relationships/webhook-topics/data"


@dataclass
class WebhookRecord:
    id: str
    name: str
    description: str | None
    endpoint_url: str
    secret_key: str
    topics: tuple[str, ...]
    created_at: str
    updated_at: str
    enabled: bool = True

    def resource(self, base: str) -> dict[str, Any]:
        self_url = f"{base}{WEBHOOKS}/{self.id}/"
        topics = [{"type": "webhook-topic", "id": topic} for topic in self.topics]
        links = {"self": f"{self_url}relationships/webhook-topics/", "related": self_url}
        return {
            "type": "webhook",
            "id": self.id,
            "attributes": {
                "name": self.name,
                "description": self.description,
                "endpoint_url": self.endpoint_url,
                "enabled": self.enabled,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            },
            "relationships": {"webhook-topics": {"data": topics, "links": links}},
            "links": {"self": self_url},
        }


@dataclass(frozen=True)
class NewWebhook:
    """A create_webhook body, checked."""

    name: str
    description: str | None
    endpoint_url: str
    secret_key: str
    topics: tuple[str, ...]


class WebhookBook:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._webhooks: dict[str, WebhookRecord] = {}

    def create(self, new: NewWebhook, at: str) -> WebhookRecord:
        webhook_id = "01" + uuid.uuid4().hex[:24].upper()  # shaped like Klaviyo's ids
        record = WebhookRecord(
            webhook_id,
            new.name,
            new.description,
            new.endpoint_url,
            new.secret_key,
            new.topics,
            at,
            at,
        )
        with self._lock:
            self._webhooks[webhook_id] = record
        return record

    def get(self, webhook_id: str) -> WebhookRecord | None:
        with self._lock:
            return self._webhooks.get(webhook_id)

    def all(self) -> list[WebhookRecord]:
        with self._lock:
            return list(self._webhooks.values())

    def delete(self, webhook_id: str) -> bool:
        with self._lock:
            return self._webhooks.pop(webhook_id, None) is not None

    def subscribed(self, topic: str) -> list[WebhookRecord]:
        """The enabled webhooks subscribed to `topic`."""
        with self._lock:
            return [w for w in self._webhooks.values() if w.enabled and topic in w.topics]

    def clear(self) -> None:
        with self._lock:
            self._webhooks.clear()


def parse_create(document: Any) -> NewWebhook:
    """A create_webhook body (the shape above); Invalid names what is wrong."""
    data = _object(document.get("data") if isinstance(document, dict) else None, "/data")
    if data.get("type") != "webhook":
        raise Invalid("/data/type", "must be 'webhook'")
    attributes = _object(data.get("attributes"), _ATTRIBUTES)
    name = _text(attributes.get("name"), f"{_ATTRIBUTES}/name", MAX_NAME)
    description = attributes.get("description")
    if description is not None and not isinstance(description, str):
        raise Invalid(f"{_ATTRIBUTES}/description", "must be a string")
    url = _endpoint_url(attributes.get("endpoint_url"))
    secret = _text(attributes.get("secret_key"), f"{_ATTRIBUTES}/secret_key", MAX_NAME)
    return NewWebhook(name, description, url, secret, _topics(data.get("relationships")))


def _object(value: Any, pointer: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(pointer, "must be an object")
    return value


def _text(value: Any, pointer: str, most: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > most:
        raise Invalid(pointer, f"must be a non-empty string of at most {most} characters")
    return value


def _endpoint_url(value: Any) -> str:
    pointer = f"{_ATTRIBUTES}/endpoint_url"
    url = _text(value, pointer, 2048).strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a malformed port raises
    except ValueError:
        raise Invalid(pointer, f"Invalid URL: {url!r}") from None
    if not host:
        raise Invalid(pointer, f"Invalid URL: {url!r}")
    if parts.scheme == "https" or (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return url
    raise Invalid(pointer, "The endpoint URL must use https.")


def _topics(value: Any) -> tuple[str, ...]:
    relationships = _object(value, "/data/relationships")
    container = _object(relationships.get("webhook-topics"), "/data/relationships/webhook-topics")
    items = container.get("data")
    if not isinstance(items, list) or not items:
        raise Invalid(_TOPICS_POINTER, "must be a non-empty array")
    topics: dict[str, None] = {}
    for index, item in enumerate(items):
        pointer = f"{_TOPICS_POINTER}/{index}"
        if _object(item, pointer).get("type") != "webhook-topic":
            raise Invalid(f"{pointer}/type", "must be 'webhook-topic'")
        if item.get("id") not in TOPICS:
            raise Invalid(f"{pointer}/id", f"Unknown webhook topic: {item.get('id')!r}.")
        topics[item["id"]] = None
    return tuple(topics)
