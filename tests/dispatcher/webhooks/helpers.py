"""Deliveries as the providers send them: Klaviyo's signed JSON batches and
ActiveCampaign's form posts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from dispatcher.webhooks import klaviyo

SECRET = "whsec-0123456789abcdef"
AC_SECRET = "ac-url-secret-0123456789"
WEBHOOK_ID = "01JWEBHOOK0000000000000000"
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
PROFILE_ID = "01JPROFILE0000000000000000"


def klaviyo_item(
    external_id: str = "01JEVENT00000000000000000A",
    topic: str = "event:klaviyo.opened_email",
    *,
    properties: dict[str, Any] | None = None,
    email: str | None = "ada@example.com",
    phone: str | None = "+15005550006",
    when: str = "2026-11-02T09:29:00+00:00",
) -> dict[str, Any]:
    """One `data` item: an event of `topic` by one profile, as Get Event has it."""
    profile: dict[str, Any] = {}
    if email is not None:
        profile["email"] = email
    if phone is not None:
        profile["phone_number"] = phone
    return {
        "external_id": external_id,
        "topic": topic,
        "payload": {
            "data": {
                "type": "event",
                "id": external_id,
                "attributes": {
                    "datetime": when,
                    "timestamp": 1793611740,
                    "event_properties": properties or {},
                },
                "relationships": {"profile": {"data": {"type": "profile", "id": PROFILE_ID}}},
            },
            "included": [{"type": "profile", "id": PROFILE_ID, "attributes": profile}],
        },
    }


def klaviyo_body(*items: dict[str, Any], webhook_id: str = WEBHOOK_ID) -> bytes:
    meta = {
        "klaviyo_account_id": "AbC123",
        "klaviyo_webhook_id": webhook_id,
        "timestamp": "2026-11-02T09:30:00+00:00",
    }
    return orjson.dumps({"data": list(items), "meta": meta})


def signed_headers(
    body: bytes,
    *,
    secret: str = SECRET,
    sent: datetime = NOW,
    timestamp: str | None = None,
    webhook_id: str = WEBHOOK_ID,
) -> dict[str, str]:
    """The headers Klaviyo sends with `body`; the timestamp as integer epoch
    seconds unless given."""
    stamp = str(int(sent.timestamp())) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        klaviyo.WEBHOOK_ID_HEADER: webhook_id,
        klaviyo.TIMESTAMP_HEADER: stamp,
        klaviyo.SIGNATURE_HEADER: klaviyo.signature(secret, body, stamp),
    }


def ac_form(
    event_type: str = "open",
    *,
    drop: tuple[str, ...] = (),
    extra: Mapping[str, str] | None = None,
    **fields: str,
) -> bytes:
    """An ActiveCampaign delivery: `fields` (and `extra`) by their bracketed
    names, given with __ for the brackets (contact__email: contact[email]); the
    fields named in `drop` (bracketed) left out."""
    values = {
        "type": event_type,
        "date_time": "2026-11-02T04:29:00-05:00",
        "initiated_from": "public",
        "initiated_by": "",
        "list": "0",
        "contact[id]": "42",
        "contact[email]": "ada@example.com",
        "contact[phone]": "+15005550006",
        "campaign[id]": "7",
        "campaign[message][id]": "9",
    }
    for name, value in {**(extra or {}), **fields}.items():
        head, *rest = name.split("__")
        values["".join([head, *(f"[{part}]" for part in rest)])] = value
    return urlencode({k: v for k, v in values.items() if k not in drop}).encode()


# What the service stores of each text field of an Engagement (service/storage/
# models.py, Engagement), and the receiver's own bound on the others.
STORED_CHARS = {
    "external_id": 128,
    "provider_type": 128,
    "campaign_id": 128,
    "flow_id": 128,
    "message_id": 128,
    "bounce_type": 16,
    "detail": 255,
    "url": 2000,
    "email": 2000,
    "phone": 2000,
}


def assert_storable(engagement: Any) -> None:
    """Every text field of `engagement` free of C0 control characters (NUL among
    them: PostgreSQL takes no NUL in a text) and within what the service stores."""
    for name, most in STORED_CHARS.items():
        value = getattr(engagement, name)
        assert not any(ord(c) < 0x20 for c in value), (name, value)
        assert len(value) <= most, (name, len(value))
