"""Contacts: sync (upsert on email), find, read, delete, and a contact's memberships.

Beyond shared/PROVIDERS-API.md (the model decides; a real account could differ): a sync body
that is not `{"contact": {email, ...}}` with a plausible email, or that names a field id the
account does not have, answers the documented bare 400 `{}`; a sync answers 201 whether it
created or updated (only 201 is documented); reads of an unknown contact answer the same 404
message as its deletion."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from dispatcher.sandbox.activecampaign.body import Call, page, ref
from dispatcher.sandbox.activecampaign.errors import ApiError, bare, message
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.store import Account, Row, public, timestamp

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAMES = ("firstName", "lastName", "phone")


def is_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 255 and EMAIL.match(value) is not None


def contact_or_404(account: Account, contact_id: str) -> Row:
    error = message(404, f"No result found for contact with id {contact_id}")
    return account.contacts.need(contact_id, error)


def new_contact(account: Account, email: str, now: float) -> Row:
    stamp = timestamp(now)
    key = email.lower()
    key = email if key == email else key  # one string, not two, for the usual address
    row = {"email": email, "email_key": key, "firstName": "", "lastName": "", "phone": ""}
    row |= {"cdate": stamp, "udate": stamp, "deleted": "0"}
    row["hash"] = hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
    return account.contacts.insert(row)


def set_field_value(account: Account, contact: Row, field_id: str, value: str, now: float) -> Row:
    """Create or overwrite one field value (an empty string overwrites too)."""
    stamp = timestamp(now)
    row = account.field_values.first(contact=contact["id"], field=field_id)
    if row is None:
        row = account.field_values.insert(
            {"contact": contact["id"], "field": field_id, "value": value, "cdate": stamp}
        )
    row |= {"value": value, "udate": stamp, "owner": contact["id"]}
    contact["udate"] = stamp
    return row


def contact_json(account: Account, contact: Row) -> Row:
    values = [row["id"] for row in account.field_values.where(contact=contact["id"])]
    links = {name: f"/api/3/contacts/{contact['id']}/{name}" for name in _SUBCOLLECTIONS}
    return public(contact) | {"fieldValues": values, "links": links}


def sync(account: Account, call: Call) -> Answer:
    contact = call.resource("contact", bare(400))
    email = contact.get("email")
    if not isinstance(email, str) or not is_email(email):
        raise bare(400)
    values = _field_values(account, contact.get("fieldValues"))
    names = {name: contact[name] for name in NAMES if name in contact}
    if any(value is not None and not isinstance(value, str) for value in names.values()):
        raise bare(400)
    row = account.contact_by_email(email) or new_contact(account, email, call.now)
    row |= {name: value or "" for name, value in names.items()}
    row["udate"] = timestamp(call.now)
    written = [set_field_value(account, row, field, value, call.now) for field, value in values]
    return 201, {"fieldValues": [public(v) for v in written], "contact": contact_json(account, row)}


def _field_values(account: Account, given: Any) -> list[tuple[str, str]]:
    """(field id, value) pairs of a sync's fieldValues; a bare 400 if any is malformed."""
    if given is None:
        return []
    if not isinstance(given, list):
        raise bare(400)
    pairs = []
    for item in given:
        field_id = ref(item.get("field")) if isinstance(item, dict) else None
        value = item.get("value") if isinstance(item, dict) else None
        if field_id is None or account.fields.get(field_id) is None:
            raise bare(400)
        if value is None:
            value = ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bare(400)
        pairs.append((field_id, str(value)))
    return pairs


def find(account: Account, call: Call) -> Answer:
    """GET /contacts: email (exact), email_like, ids[], listid, tagid and id_greater filters."""
    if "email" in call.query:  # the common lookup: the email index, not a scan
        found = account.contact_by_email(call.query["email"])
        candidates = [found] if found is not None else []
    else:
        candidates = list(account.contacts)
    rows = [row for row in candidates if _matches(account, row, call.query)]
    selected, meta = page(rows, call.query)
    meta["page_input"] |= {k: v for k, v in call.query.items() if k not in ("limit", "offset")}
    contacts = [contact_json(account, row) for row in selected]
    return 200, {"scoreValues": [], "contacts": contacts, "meta": meta}


def _matches(account: Account, row: Row, query: dict[str, str]) -> bool:
    if "email" in query and row["email_key"] != query["email"].strip().lower():
        return False
    if "email_like" in query and query["email_like"].lower() not in row["email_key"]:
        return False
    if "id_greater" in query and int(row["id"]) <= int(ref(query["id_greater"]) or 0):
        return False
    if "ids[]" in query and row["id"] not in {ref(i) for i in query["ids[]"].split(",")}:
        return False
    if "listid" in query and not account.contact_lists.first(
        contact=row["id"], list=ref(query["listid"])
    ):
        return False
    return "tagid" not in query or bool(
        account.contact_tags.first(contact=row["id"], tag=ref(query["tagid"]))
    )


def read(account: Account, call: Call) -> Answer:
    contact = contact_or_404(account, call.params[0])
    answer: dict[str, Any] = {"contact": contact_json(account, contact)}
    for name, table in _subcollections(account).items():
        answer[name] = [public(row) for row in table.where(contact=contact["id"])]
    answer["fieldValues"] = [public(v) for v in account.field_values.where(contact=contact["id"])]
    return 200, answer


def delete(account: Account, call: Call) -> Answer:
    contact = contact_or_404(account, call.params[0])
    tables = [*_subcollections(account).values(), account.field_values]
    for table in tables:
        for row in table.where(contact=contact["id"]):
            table.delete(row["id"])
    account.contacts.delete(contact["id"])
    return 200, {}


def subcollection(name: str) -> Any:
    def answer(account: Account, call: Call) -> Answer:
        contact = contact_or_404(account, call.params[0])
        table = _subcollections(account)[name]
        return 200, {name: [public(row) for row in table.where(contact=contact["id"])]}

    return answer


_SUBCOLLECTIONS = ("contactLists", "contactTags", "contactAutomations")


def _subcollections(account: Account) -> dict[str, Any]:
    return {
        "contactLists": account.contact_lists,
        "contactTags": account.contact_tags,
        "contactAutomations": account.contact_automations,
    }


ROUTES = [
    route("POST", "/api/3/contact/sync", sync),
    route("GET", "/api/3/contacts", find),
    route("GET", "/api/3/contacts/{id}", read),
    route("DELETE", "/api/3/contacts/{id}", delete),
    *(
        route("GET", f"/api/3/contacts/{{id}}/{name}", subcollection(name))
        for name in _SUBCOLLECTIONS
    ),
]

__all__ = ["ROUTES", "ApiError", "contact_or_404", "is_email", "new_contact", "set_field_value"]
