"""A person read back from ActiveCampaign for reconciliation: the contact, its custom field
values (by title), its list statuses and whether it carries the suppression tag: two requests
(find by email, read by id) once the field titles and the tag id are known.

Field values are text (ActiveCampaign stores them so): properties come back as strings, and a
comparison with ours compares their text (bodies.as_text). The consent fields, the newsletter
flag, `external_id` and `location` are not properties. Newsletter membership is list status 1,
or status 2 when the record says a member whom we unsubscribed for want of consent (or a
suppression): both are what consent_calls sends for that state.
"""

from __future__ import annotations

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
    values = _field_values(whole, await fields.titles(READ_PERSON))
    statuses = list_statuses(whole)
    tag = await contacts.tag_id(suppression_tag, READ_PERSON)
    suppressed = tag in tag_ids(whole).values()
    email_marketing = consent_calls.opt_in(values.get(consent_calls.EMAIL_CONSENT_FIELD))
    return ProviderPerson(
        email=str(found.get("email") or email),
        provider_id=contact_id,
        profile=_profile(found, values),
        email_marketing=email_marketing,
        sms_marketing=_sms(values, statuses, lists),
        suppressed=suppressed,
        newsletter_member=_newsletter(values, statuses, lists, email_marketing, suppressed),
    )


def _field_values(whole: JsonObject, titles: dict[str, str]) -> dict[str, str]:
    values = {}
    for item in records(whole, "fieldValues"):
        title = titles.get(as_id(item.get("field")))
        text = item.get("value")
        if title is not None and isinstance(text, str) and text:
            values[title] = text
    return values


def _profile(contact: JsonObject, values: dict[str, str]) -> Profile:
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


def _sms(values: dict[str, str], statuses: dict[str, int], lists: Lists) -> bool | None:
    if lists.sms and lists.sms in statuses:
        return statuses[lists.sms] == consent_calls.SUBSCRIBED
    return consent_calls.opt_in(values.get(consent_calls.SMS_CONSENT_FIELD))


def _newsletter(
    values: dict[str, str],
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
