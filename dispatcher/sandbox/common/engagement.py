"""What a person did with a message, as a test tells a sandbox (POST /_sandbox/engagement),
in one shape for both sandboxes; each applies it to its account where its provider would and
reports it to the webhooks subscribed (klaviyo/webhook_events.py,
activecampaign/webhook_events.py):

    {"email": "ada@example.com", "type": "delivered" | "opened" | "clicked" | "bounced" |
     "spam" | "unsubscribed" | "sms_unsubscribed", "message_id"?: a message of
     GET /_sandbox/messages, "url"? (required for clicked), "bounce_type"?: "hard" (default)
     | "soft", "phone"?: E.164 (an SMS unsubscribe's number), "campaign_id"?: the campaign
     the message belonged to, "reason"?: an unsubscribe's reason}

Without `message_id`, the engagement is with the last message sent to the person on its
channel (SMS for sms_unsubscribed, email otherwise), if any: the sandbox's choice, so that a
test need not look the id up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DELIVERED, OPENED, CLICKED, BOUNCED = "delivered", "opened", "clicked", "bounced"
SPAM, UNSUBSCRIBED, SMS_UNSUBSCRIBED = "spam", "unsubscribed", "sms_unsubscribed"
TYPES = (DELIVERED, OPENED, CLICKED, BOUNCED, SPAM, UNSUBSCRIBED, SMS_UNSUBSCRIBED)
HARD, SOFT = "hard", "soft"
_TEXTS = ("url", "bounce_type", "phone", "campaign_id", "reason")
_FIELDS = frozenset({"email", "type", "message_id", *_TEXTS})


@dataclass(frozen=True)
class Engagement:
    email: str
    type: str
    message_id: str | None = None
    url: str | None = None
    bounce_type: str | None = None  # "hard" or "soft" for a bounce; None otherwise
    phone: str | None = None
    campaign_id: str | None = None
    reason: str | None = None

    @property
    def channel(self) -> str:
        """The channel of the messages it is about."""
        return "sms" if self.type == SMS_UNSUBSCRIBED else "email"

    @property
    def hard_bounce(self) -> bool:
        return self.type == BOUNCED and self.bounce_type == HARD

    @classmethod
    def from_json(cls, document: Any) -> Engagement:
        """ValueError names what is wrong."""
        if not isinstance(document, dict):
            raise ValueError("send a JSON object")
        unknown = set(document) - _FIELDS
        if unknown:
            raise ValueError(f"unknown fields: {sorted(unknown)}")
        email, kind = document.get("email"), document.get("type")
        if not isinstance(email, str) or "@" not in email.strip():
            raise ValueError("email must be an email address")
        if kind not in TYPES:
            raise ValueError(f"type must be one of {list(TYPES)}")
        texts = {name: _text(document, name) for name in _TEXTS}
        if kind == CLICKED and not texts["url"]:
            raise ValueError("a click needs its url")
        if kind == BOUNCED:
            texts["bounce_type"] = texts["bounce_type"] or HARD
            if texts["bounce_type"] not in (HARD, SOFT):
                raise ValueError('bounce_type must be "hard" or "soft"')
        elif texts["bounce_type"] is not None:
            raise ValueError("bounce_type is for a bounce only")
        return cls(email.strip(), kind, _message_id(document.get("message_id")), **texts)


def _text(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{name} must be a non-empty string")
    return None if value is None else value.strip()


def _message_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise ValueError("message_id must be a message's id")
    return str(value).strip()


def chosen_message(engagement: Engagement, sent: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of the messages sent (GET /_sandbox/messages entries, oldest first), the one the
    engagement names, else the person's last on its channel. ValueError: a `message_id` that
    names no message sent."""
    if engagement.message_id is not None:
        found = [m for m in sent if str(m["id"]) == engagement.message_id]
        if not found:
            raise ValueError(f"no message {engagement.message_id} was sent")
        return found[0]
    email = engagement.email.lower()
    mine = [
        m
        for m in sent
        if (m.get("email") or "").lower() == email and m.get("channel") == engagement.channel
    ]
    return mine[-1] if mine else None
