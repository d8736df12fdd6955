"""A contact's list status, tags, automation enrolments and field values.

From shared/PROVIDERS-API.md: contactLists answer 200 (status 1 subscribed, 2 unsubscribed;
1 again re-subscribes); contactTags 201, an unknown contact 404 `{"errors":[{status, title,
detail}]}`, a missing field 422 "Missing attribute"; contactAutomations 201, a failure 403
`{"message":"Could not create SubscriberSeries"}`, deleting an unknown enrolment 403; deleting
an unknown contactTag 404; fieldValues 200.

Beyond the page (the model decides): an unknown contact or list in contactLists, and an unknown
contact or field in fieldValues, are 422 related_missing; tagging a contact again with the same
tag answers the existing contactTag; every enrolment POST enrols again (a new enrolment id,
`entered` counted), as nothing makes it idempotent. An enrolment in an automation with messages
starts sending them, and its DELETE cancels those still pending (automation_flows.py)."""

from __future__ import annotations

from typing import Any

from dispatcher.sandbox.activecampaign.body import Call, ref, required_ref
from dispatcher.sandbox.activecampaign.contacts import contact_json, set_field_value
from dispatcher.sandbox.activecampaign.enrolments import add_enrolment
from dispatcher.sandbox.activecampaign.errors import (
    ApiError,
    invalid,
    message,
    no_result,
    related_missing,
)
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.store import Account, Row, public, timestamp

SUBSCRIBED, UNSUBSCRIBED = "1", "2"


def set_list_status(account: Account, contact: Row, list_id: str, status: str, now: float) -> Row:
    stamp = timestamp(now)
    row = account.contact_lists.first(contact=contact["id"], list=list_id)
    if row is None:
        row = account.contact_lists.insert(
            {"contact": contact["id"], "list": list_id, "status": status, "sourceid": "0"}
            | {"sdate": None, "udate": None, "unsubreason": None, "automation": None}
        )
    row["status"] = status
    row["sdate" if status == SUBSCRIBED else "udate"] = stamp
    return row


def list_status(account: Account, call: Call) -> Answer:
    given = call.resource("contactList")
    contact_id = required_ref(given, "contact", "/contactList")
    list_id = required_ref(given, "list", "/contactList")
    status = required_ref(given, "status", "/contactList")
    if status not in (SUBSCRIBED, UNSUBSCRIBED):
        raise invalid("/contactList/status", "status must be 1 (subscribe) or 2 (unsubscribe)")
    contact = account.contacts.need(contact_id, related_missing("/contactList/contact", "Contact"))
    account.lists.need(list_id, related_missing("/contactList/list", "List"))
    row = set_list_status(account, contact, list_id, status, call.now)
    if "sourceid" in given and ref(given["sourceid"]) is not None:
        row["sourceid"] = ref(given["sourceid"])
    return 200, {"contacts": [contact_json(account, contact)], "contactList": public(row)}


def tag_contact(account: Account, contact: Row, tag: Row, now: float) -> Row:
    existing = account.contact_tags.first(contact=contact["id"], tag=tag["id"])
    if existing is not None:
        return existing
    row = {"contact": contact["id"], "tag": tag["id"], "cdate": timestamp(now)}
    return account.contact_tags.insert(row | {"links": {}})


def add_tag(account: Account, call: Call) -> Answer:
    given = call.resource("contactTag", _tag_error(422, "Missing attribute", "/contactTag"))
    ids = {}
    for name in ("contact", "tag"):
        ids[name] = ref(given.get(name))
        if ids[name] is None:
            raise _tag_error(422, "Missing attribute", f"/contactTag/{name}")
    contact = account.contacts.need(ids["contact"] or "", _not_found("Contact not found"))
    tag = account.tags.need(ids["tag"] or "", _not_found("Tag not found"))
    return 201, {"contactTag": public(tag_contact(account, contact, tag, call.now))}


def _tag_error(status: int, title: str, pointer: str) -> ApiError:
    error = {"status": status, "title": title, "source": {"pointer": pointer}}
    return ApiError(status, {"errors": [error]})


def _not_found(detail: str) -> ApiError:
    return ApiError(404, {"errors": [{"status": 404, "title": "Not Found", "detail": detail}]})


def remove_tag(account: Account, call: Call) -> Answer:
    row = account.contact_tags.need(call.params[0])
    account.contact_tags.delete(row["id"])
    return 200, {}


def enrol(account: Account, call: Call) -> Answer:
    failed = message(403, "Could not create SubscriberSeries")
    given = call.resource("contactAutomation", failed)
    contact = account.contacts.need(ref(given.get("contact")) or "", failed)
    automation = account.automations.need(ref(given.get("automation")) or "", failed)
    row = add_enrolment(account, contact, automation, call.now)
    return 201, {"contacts": [contact_json(account, contact)], "contactAutomation": public(row)}


def unenrol(account: Account, call: Call) -> Answer:
    enrolment_id = call.params[0]
    row = account.contact_automations.need(
        enrolment_id, no_result("SubscriberSeries", enrolment_id, 403)
    )
    account.contact_automations.delete(row["id"])
    account.flows.cancel("enrolment removed", call.now, run_key=row["id"])
    automation = account.automations.get(row["automation"])
    if automation is not None:
        automation["exited"] = str(int(automation["exited"]) + 1)
    return 200, {}


def field_value(account: Account, call: Call) -> Answer:
    given = call.resource("fieldValue")
    contact_id = required_ref(given, "contact", "/fieldValue")
    field_id = required_ref(given, "field", "/fieldValue")
    value: Any = given.get("value")
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid("/fieldValue/value", "value must be a string")
    contact = account.contacts.need(contact_id, related_missing("/fieldValue/contact", "Contact"))
    account.fields.need(field_id, related_missing("/fieldValue/field", "Field"))
    row = set_field_value(account, contact, field_id, str(value), call.now)
    return 200, {"contacts": [contact_json(account, contact)], "fieldValue": public(row)}


ROUTES = [
    route("POST", "/api/3/contactLists", list_status),
    route("POST", "/api/3/contactTags", add_tag),
    route("DELETE", "/api/3/contactTags/{id}", remove_tag),
    route("POST", "/api/3/contactAutomations", enrol),
    route("DELETE", "/api/3/contactAutomations/{id}", unenrol),
    route("POST", "/api/3/fieldValues", field_value),
]
