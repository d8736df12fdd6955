"""Bulk import (shared/PROVIDERS-API.md, "Bulk import"): a batch of at most 250 contacts and
399,999 bytes, queued, completed `import_delay_s` later (applied to the account then), with
its own per-minute limits answered as a 400.

Beyond the page (the model decides): a batch whose structure is wrong (no email, a field id
that is not a number, ...) is refused whole with the 400 validation body; a contact whose
email is not an address, or that names a list or field the account lacks, is a `failure` of
the completed batch. Statuses go queued -> processing (half the delay) -> completed. Tags a
contact names are created when missing; a list the contact unsubscribed from stays
unsubscribed. An address on the account's exclusion list is skipped: neither a success nor a
failure of its batch (PROVIDERS-API.md)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from dispatcher.sandbox.activecampaign.body import Call, ref
from dispatcher.sandbox.activecampaign.contacts import is_email, new_contact, set_field_value
from dispatcher.sandbox.activecampaign.errors import ApiError, Throttled, message
from dispatcher.sandbox.activecampaign.limits import (
    IMPORTS_PER_MINUTE,
    SINGLE_IMPORTS_PER_MINUTE,
)
from dispatcher.sandbox.activecampaign.memberships import set_list_status, tag_contact
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.store import Account, Import, Row, timestamp

MAX_CONTACTS = 250
MAX_PAYLOAD_BYTES = 399_999
NAME_KEYS = {"first_name": "firstName", "last_name": "lastName", "phone": "phone"}


def start(account: Account, call: Call) -> Answer:
    contacts = _contacts(call)
    single = len(contacts) == 1
    refusal = call.admit(SINGLE_IMPORTS_PER_MINUTE if single else IMPORTS_PER_MINUTE)
    if refusal is not None:
        what = "single-contact imports" if single else "imports"
        reason = f"Up to {refusal.window.limit} {what} may be requested per minute."
        body = {"success": 0, "message": "Rate limit exceeded.", "failureReasons": [reason]}
        raise Throttled(refusal, 400, body)
    reasons = [r for index, item in enumerate(contacts) for r in _problems(index, item)]
    if reasons:
        raise _validation(reasons)
    batch = Import(str(uuid.uuid4()), call.now, call.now + call.import_delay_s, contacts)
    account.imports[batch.batch_id] = batch
    settle(account, call.now)
    answer = {"success": 1, "queued_contacts": len(contacts), "batchId": batch.batch_id}
    return 200, answer | {"message": "Contact import queued"}


def _contacts(call: Call) -> list[Any]:
    if call.size > MAX_PAYLOAD_BYTES:
        raise _validation([f"The payload is {call.size} bytes; at most 399,999 are accepted."])
    document = call.document
    contacts = document.get("contacts") if isinstance(document, dict) else None
    if not isinstance(contacts, list) or not contacts:
        raise _validation(["'contacts' must be a non-empty array."])
    if len(contacts) > MAX_CONTACTS:
        raise _validation([f"At most {MAX_CONTACTS} contacts per request, got {len(contacts)}."])
    return contacts


def _validation(reasons: list[Any]) -> ApiError:
    body = {"success": 0, "message": "JSON payload did not pass validation"}
    return ApiError(400, body | {"failureReasons": reasons})


def _problems(index: int, item: Any) -> list[dict[str, Any]]:
    def problem(text: str) -> dict[str, Any]:
        return {"contact": index, "failureReason": text}

    if not isinstance(item, dict):
        return [problem("A contact must be an object.")]
    found = []
    if not isinstance(item.get("email"), str) or not item["email"].strip():
        found.append(problem("'email' is required."))
    for key in (*NAME_KEYS, "customer_acct_name"):
        if key in item and not isinstance(item[key], str):
            found.append(problem(f"'{key}' must be a string."))
    for field in _items(item, "fields"):
        if not isinstance(field, dict) or _whole(field.get("id")) is None:
            found.append(problem("Each field needs a numeric 'id'."))
        elif not isinstance(field.get("value"), str):
            found.append(problem("Each field needs a string 'value'."))
    for key in ("subscribe", "unsubscribe"):
        for entry in _items(item, key):
            if not isinstance(entry, dict) or ref(entry.get("listid")) is None:
                found.append(problem(f"Each '{key}' entry needs a 'listid'."))
    if any(not isinstance(tag, str) or not tag.strip() for tag in _items(item, "tags")):
        found.append(problem("'tags' must be names."))
    for key in ("fields", "subscribe", "unsubscribe", "tags"):
        if key in item and not isinstance(item[key], list):
            found.append(problem(f"'{key}' must be an array."))
    return found


def _items(item: dict[str, Any], key: str) -> list[Any]:
    value = item.get(key)
    return value if isinstance(value, list) else []


def _whole(value: Any) -> int | None:
    found = ref(value)
    return None if found is None else int(found)


def settle(account: Account, now: float) -> None:
    """Complete every batch whose delay has passed, in the order they were queued."""
    for batch in account.imports.values():
        if not batch.done and batch.due <= now:
            for item in batch.contacts:
                _apply(account, batch, item, now)
            batch.done, batch.contacts = True, []


def _apply(account: Account, batch: Import, item: dict[str, Any], now: float) -> None:
    email = item["email"].strip()
    if email.lower() in account.excluded:
        return
    fields = [(str(_whole(f["id"])), f["value"]) for f in _items(item, "fields")]
    lists = [
        (ref(e["listid"]), key) for key in ("subscribe", "unsubscribe") for e in item.get(key, [])
    ]
    known = all(account.fields.get(field_id) for field_id, _ in fields) and all(
        list_id is not None and account.lists.get(list_id) for list_id, _ in lists
    )
    if not is_email(email) or not known:
        batch.failure.append(email)
        return
    contact = account.contact_by_email(email) or new_contact(account, email, now)
    contact |= {NAME_KEYS[key]: item[key] for key in NAME_KEYS if key in item}
    contact["udate"] = timestamp(now)
    for field_id, value in fields:
        set_field_value(account, contact, field_id, value, now)
    for name in _items(item, "tags"):
        tag_contact(account, contact, _tag_named(account, name.strip(), now), now)
    for list_id, key in lists:
        _import_list_status(account, contact, str(list_id), key == "subscribe", now)
    batch.success.append(contact["id"])


def _tag_named(account: Account, name: str, now: float) -> Row:
    tag = account.tags.first(tag_key=name.lower())
    if tag is None:
        row = {"tag": name, "tag_key": name.lower(), "tagType": "contact", "description": ""}
        tag = account.tags.insert(row | {"cdate": timestamp(now)})
    return tag


def _import_list_status(
    account: Account, contact: Row, list_id: str, subscribe: bool, now: float
) -> None:
    current = account.contact_lists.first(contact=contact["id"], list=list_id)
    if subscribe and current is not None and current["status"] == "2":
        return  # an import cannot subscribe a contact who unsubscribed from the list
    set_list_status(account, contact, list_id, "1" if subscribe else "2", now)


def info(account: Account, call: Call) -> Answer:
    batch_id = call.query.get("batchId", "").strip()
    if not batch_id:
        raise ApiError(400, {"success": 0, "message": "'batchId' is a required field."})
    batch = account.imports.get(batch_id)
    if batch is None:
        raise message(404, f"No Result found for import with batchId {batch_id}")
    return 200, {
        "status": _status(batch, call.now),
        "success": batch.success,
        "failure": batch.failure,
    }


def _status(batch: Import, now: float) -> str:
    if batch.done:
        return "completed"
    return "queued" if now < (batch.created + batch.due) / 2 else "processing"


def overview(account: Account, call: Call) -> Answer:
    """Outstanding and recently completed batches, per day queued."""
    groups: dict[tuple[bool, str], list[Import]] = defaultdict(list)
    for batch in account.imports.values():
        groups[(batch.done, timestamp(batch.created)[:10])].append(batch)
    summary: dict[str, list[dict[str, Any]]] = {"outstanding": [], "recentlyCompleted": []}
    for (done, day), batches in sorted(groups.items()):
        count = sum(b.size for b in batches)
        entry = {"forDate": day, "batches": len(batches), "contacts": count}
        summary["recentlyCompleted" if done else "outstanding"].append(entry)
    return 200, summary


ROUTES = [
    route("POST", "/api/3/import/bulk_import", start),
    route("GET", "/api/3/import/bulk_import", overview),
    route("GET", "/api/3/import/info", info),
]
