"""Helpers for the provider tests: a client on the sandbox, events, request headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from dispatcher.providers.base import TrackedEvent
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox

T = TypeVar("T")
API_KEY = "pk_test_0123456789abcdef"
WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def with_client(
    sandbox: Sandbox, operation: Callable[[KlaviyoClient], Awaitable[T]], **options: Any
) -> T:
    """Run one async operation with a fresh KlaviyoClient pointed at the sandbox."""

    async def run() -> T:
        async with KlaviyoClient(API_KEY, base_url=sandbox.base_url, **options) as client:
            return await operation(client)

    return asyncio.run(run())


def event(event_id: str, email: str = "ada@example.com", **fields: Any) -> TrackedEvent:
    values: dict[str, Any] = {
        "metric": "placed_order",
        "time": WHEN,
        "properties": {"order_id": event_id, "total": Decimal("24.00")},
        "value": Decimal("24.50"),
        "value_currency": "EUR",
    }
    return TrackedEvent(event_id=event_id, email=email, **(values | fields))


def headers(**overrides: str | None) -> dict[str, str]:
    """Valid Klaviyo request headers; an override of None leaves a header out."""
    values: dict[str, str | None] = {
        "Authorization": f"Klaviyo-API-Key {API_KEY}",
        "revision": "2026-07-15",
        "Content-Type": "application/vnd.api+json",
        "Accept": "application/vnd.api+json",
    }
    values |= overrides
    return {name: value for name, value in values.items() if value is not None}


def provider_consent(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """What GET /_sandbox/profiles?email= says about one person, in the terms we compare
    with our own state (a profile no job named yet holds no consent and no suppression).
    Of the suppressions only our own (USER_SUPPRESSED) counts, and list membership is left
    out: the planner joins the newsletter list but nothing ever leaves one."""
    if not profiles:
        return {"email": False, "sms": False, "suppressed": False, "can_receive_email": False}
    (profile,) = profiles
    email = profile["subscriptions"]["email"]["marketing"]
    reasons = {s["reason"] for s in email["suppression"]}
    return {
        "email": email["consent"] == "SUBSCRIBED",
        "sms": profile["subscriptions"]["sms"]["marketing"]["consent"] == "SUBSCRIBED",
        "suppressed": "USER_SUPPRESSED" in reasons,
        "can_receive_email": email["can_receive_email_marketing"],
    }


def expected_consent(*, email: bool, sms: bool, suppressed: bool) -> dict[str, Any]:
    """The provider state that equals ours: a channel is subscribed there when we may send
    on it (granted and not suppressed), and our suppression is its USER_SUPPRESSED."""
    may_email = email and not suppressed
    return {
        "email": may_email,
        "sms": sms and not suppressed,
        "suppressed": suppressed,
        "can_receive_email": may_email,
    }
