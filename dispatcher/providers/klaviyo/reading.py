"""Reading a person back from Klaviyo, for reconciliation: the queries and the
way from Klaviyo's profile resource to a `ProviderPerson`.

    GET /api/profiles?filter=equals(email,"...")&additional-fields[profile]=subscriptions
    GET /api/profiles/{id}/lists                  (only when a newsletter list is configured)

The profile's attributes map back as `bodies.profile_import` sent them: `phone_number`,
`external_id`, `first_name`, `last_name` to the fields of those names, `properties` to the
properties, except `location`, which the import keeps among the properties.

Consent: `subscriptions.email.marketing.consent` (and `sms.marketing.consent`) is SUBSCRIBED,
UNSUBSCRIBED or NEVER_SUBSCRIBED; only SUBSCRIBED counts as a grant. `suppressed` is the
USER_SUPPRESSED suppression alone, the one our suppress call sets and our unsuppress lifts:
Klaviyo adds an UNSUBSCRIBE suppression to every email unsubscribe, and a bounce or an
invalid address is the provider's own finding, which no call of ours can change.
"""

from __future__ import annotations

import json
from typing import Any

from dispatcher.providers.base import Profile, ProviderPerson

PROFILES = "/api/profiles"
SUBSCRIBED = "SUBSCRIBED"
USER_SUPPRESSED = "USER_SUPPRESSED"
# The attributes `bodies.profile_import` sends, by the Profile field they come from.
_PROFILE_ATTRIBUTES = {
    "phone": "phone_number",
    "external_id": "external_id",
    "first_name": "first_name",
    "last_name": "last_name",
}


def profile_query(email: str) -> dict[str, str]:
    """The query parameters that find the profile with this email, consent included."""
    return {
        "filter": f"equals(email,{json.dumps(email)})",
        "additional-fields[profile]": "subscriptions",
    }


def profile_lists_path(profile_id: str) -> str:
    return f"{PROFILES}/{profile_id}/lists"


def first_profile(document: Any) -> dict[str, Any] | None:
    """The first profile resource of a `GET /api/profiles` answer; None when there is none.
    Raises ValueError for an answer that is not a JSON:API collection."""
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise ValueError("the answer has no data array")
    for resource in data:
        if isinstance(resource, dict) and isinstance(resource.get("id"), str):
            return resource
    return None


def list_ids(document: Any) -> list[str]:
    """The ids of a `GET /api/profiles/{id}/lists` page."""
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise ValueError("the answer has no data array")
    return [str(r["id"]) for r in data if isinstance(r, dict) and "id" in r]


def next_page(document: Any) -> str | None:
    links = document.get("links") if isinstance(document, dict) else None
    link = links.get("next") if isinstance(links, dict) else None
    return link if isinstance(link, str) and link else None


def person(resource: dict[str, Any], newsletter_member: bool | None) -> ProviderPerson:
    """The profile resource as the provider-neutral person."""
    attributes = resource.get("attributes") or {}
    properties = dict(attributes.get("properties") or {})
    location = properties.pop("location", None)
    email = str(attributes.get("email") or "")
    profile = Profile(
        email=email,
        location=location if isinstance(location, str) else None,
        properties=properties,
        **{field: _text(attributes.get(name)) for field, name in _PROFILE_ATTRIBUTES.items()},
    )
    subscriptions = attributes.get("subscriptions") or {}
    email_marketing = _marketing(subscriptions, "email")
    return ProviderPerson(
        email=email,
        provider_id=str(resource["id"]),
        profile=profile,
        email_marketing=_granted(email_marketing),
        sms_marketing=_granted(_marketing(subscriptions, "sms")),
        suppressed=_user_suppressed(email_marketing),
        newsletter_member=newsletter_member,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _marketing(subscriptions: Any, channel: str) -> dict[str, Any] | None:
    section = subscriptions.get(channel) if isinstance(subscriptions, dict) else None
    marketing = section.get("marketing") if isinstance(section, dict) else None
    return marketing if isinstance(marketing, dict) else None


def _granted(marketing: dict[str, Any] | None) -> bool | None:
    """None when Klaviyo says nothing of the channel (no subscriptions in the answer)."""
    if marketing is None or "consent" not in marketing:
        return None
    return bool(marketing["consent"] == SUBSCRIBED)


def _user_suppressed(marketing: dict[str, Any] | None) -> bool:
    suppressions = (marketing or {}).get("suppression") or []
    return any(isinstance(s, dict) and s.get("reason") == USER_SUPPRESSED for s in suppressions)
