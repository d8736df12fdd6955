"""A person read back from ActiveCampaign for reconciliation: the contact, its custom field
values (by title), its list statuses and whether it carries the suppression tag: two requests
(find by email, read by id) once the field titles and the tag id are known.

Field values are text (ActiveCampaign stores them so): a property comes back as a string, or
as the JSON value it was sent as when its field was made for JSON values (fields.py). The
consent fields, the newsletter flag, `external_id` and `location` are not properties. A
channel's consent is reported as the provider acts on it: granted, and not suppressed (as
Klaviyo's suppression withdraws every channel). Newsletter membership is list status 1,
or status 2 when the record says a member whom we unsubscribed for want of consent (or a
suppression): both are what consent_calls sends for that state.
"""

from __future__ import annotations

from typing import Any

import orjson

from dispatcher.providers.activecampaign import bodies, consent_calls
from dispatcher.providers.activecampaign.consent_calls import Lists
from dispatcher.providers.activecampaign.contacts import Contacts, list_statuses, tag_ids
from dispatcher.providers.activecampaign.fields import FieldIds
from dispatcher.providers.activecampaign.http import ApiHttp, JsonObject, as_id, records
from dispatcher.providers.base import READ_PERSON, Profile, ProviderPerson

_NOT_PROPERTIES = frozenset(
    {
        consent_calls.EMAIL_CONSENT_FIELD,
        consent_calls.SMS_CONSENT_FIELD,
        consent_calls.NEWSLETTER_FIELD,
        bodies.EXTERNAL_ID_FIELD,
        bodies.LOCATION_FIELD,
    }
)


async def read_person(
    api: ApiHttp,
    contacts: Contacts,
    fields: FieldIds,
    email: str,
    lists: Lists,
    suppression_tag: str,
) -> ProviderPerson | None:
    found = await contacts.find(email, READ_PERSON)
    if found is None:
        return None
    contact_id = as_id(found.get("id"))
    # One read gives the contact with its field values, list memberships and tag links.
    whole = await api.call(
        "GET", f"/contacts/{contact_id}", operation=READ_PERSON, allow_missing=True
    )
    if whole is None:
        return None  # erased meanwhile
    used = [as_id(item.get("field")) for item in records(whole, "fieldValues")]
    values = _field_values(whole, await fields.titles(READ_PERSON, used))
    statuses = list_statuses(whole)
    tag = await contacts.tag_id(suppression_tag, READ_PERSON, create=False)
    suppressed = bool(tag) and tag in tag_ids(whole).values()
    email_marketing = _open(
        consent_calls.opt_in(values.get(consent_calls.EMAIL_CONSENT_FIELD)), suppressed
    )
    return ProviderPerson(
        email=str(found.get("email") or email),
        provider_id=contact_id,
        profile=_profile(found, values),
        email_marketing=email_marketing,
        sms_marketing=_open(_sms(values, statuses, lists), suppressed),
        suppressed=suppressed,
        newsletter_member=_newsletter(values, statuses, lists, email_marketing, suppressed),
    )


def _field_values(whole: JsonObject, titles: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    """Title -> value of the contact's fields: text, or for a field of JSON values the value
    it encodes (text still when it does not parse)."""
    values: dict[str, Any] = {}
    for item in records(whole, "fieldValues"):
        title, json_values = titles.get(as_id(item.get("field")), ("", False))
        text = item.get("value")
        if title and isinstance(text, str) and text:
            values[title] = _decoded(text) if json_values else text
    return values


def _decoded(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _profile(contact: JsonObject, values: dict[str, Any]) -> Profile:
    def text(key: str) -> str | None:
        value = contact.get(key)
        return value if isinstance(value, str) and value else None

    return Profile(
        email=str(contact.get("email", "")),
        external_id=values.get(bodies.EXTERNAL_ID_FIELD),
        phone=text("phone"),
        first_name=text("firstName"),
        last_name=text("lastName"),
        location=values.get(bodies.LOCATION_FIELD),
        properties={k: v for k, v in values.items() if k not in _NOT_PROPERTIES},
    )


def _open(consent: bool | None, suppressed: bool) -> bool | None:
    """A channel's consent as the provider acts on it: a suppression withdraws it."""
    return consent and not suppressed if consent is not None else None


def _sms(values: dict[str, Any], statuses: dict[str, int], lists: Lists) -> bool | None:
    if lists.sms and lists.sms in statuses:
        return statuses[lists.sms] == consent_calls.SUBSCRIBED
    return consent_calls.opt_in(values.get(consent_calls.SMS_CONSENT_FIELD))


def _newsletter(
    values: dict[str, Any],
    statuses: dict[str, int],
    lists: Lists,
    email_marketing: bool | None,
    suppressed: bool,
) -> bool | None:
    if not lists.newsletter:
        return None
    status = statuses.get(lists.newsletter)
    if status == consent_calls.SUBSCRIBED:
        return True
    recorded_member = values.get(consent_calls.NEWSLETTER_FIELD) == "true"
    unmailable = not email_marketing or suppressed
    return status == consent_calls.UNSUBSCRIBED and recorded_member and unmailable
