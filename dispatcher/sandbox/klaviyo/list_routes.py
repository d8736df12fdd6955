"""The list endpoints (shared/PROVIDERS-API.md, "Lists and segments"). lists.py keeps the
lists; who is in each is kept with each profile's consent (consent.py).

    GET    /api/lists                       filter equals/any on name or id; sort ±created,
                                            ±id, ±name, ±updated (default: oldest first);
                                            page[size] 1-10 (10)
    POST   /api/lists                       201 + the list (name required; opt_in_process)
    POST   /api/lists/{id}/relationships/profiles     204: the profiles join the list
    DELETE /api/lists/{id}/relationships/profiles     204: the profiles leave it
    GET    /api/lists/{id}/profiles         the members as profile resources, in the order
                                            the account first knew them; filter equals/any on
                                            email or phone_number; page[size] 1-100 (20)

A write's checks, in order: body shape (400 with source.pointer: data 1-1,000 entries of
type "profile" with an id); an unknown list, 404; a profile id the account does not hold,
400 pointing at its entry (`/data/<i>/id`), and nothing changes. Joining or leaving changes
no consent; joining twice or leaving a list one is not in changes nothing. BEYOND (the page
does not say): that a missing profile is refused, not skipped, and the order of the checks.
A profile known only by its external id has nowhere to keep lists here: 400 as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dispatcher.sandbox.klaviyo import validation
from dispatcher.sandbox.klaviyo.endpoints import LIST_PROFILES, LISTS
from dispatcher.sandbox.klaviyo.filters import ANY, EQUALS
from dispatcher.sandbox.klaviyo.lists import ListRecord
from dispatcher.sandbox.klaviyo.reads import (
    Query,
    Reader,
    ReadError,
    additional_fields,
    one,
    page_links,
    page_offset,
    page_size,
    parse_filter,
    profile_resource,
)
from dispatcher.sandbox.klaviyo.state import SandboxState
from dispatcher.sandbox.klaviyo.validation import Invalid

# (state, path parameters, parsed body, arrival time, base url) -> (status, answer body)
Writer = Callable[[SandboxState, dict[str, str], Any, str, str], tuple[int, bytes]]
_BOTH = frozenset({EQUALS, ANY})
_LIST_FILTERS = {"name": _BOTH, "id": _BOTH}
_MEMBER_FILTERS = {"email": _BOTH, "phone_number": _BOTH}
_LIST_SORTS: dict[str, Callable[[ListRecord], tuple[Any, ...]]] = {
    "created": lambda r: (r.created, r.seq),
    "id": lambda r: (r.id,),
    "name": lambda r: (r.name, r.seq),
    "updated": lambda r: (r.updated, r.seq),
}


def _create(
    state: SandboxState, params: dict[str, str], document: Any, at: str, base: str
) -> tuple[int, bytes]:
    name, opt_in_process = validation.list_create(document)
    resource = state.lists.create(name, opt_in_process, at).resource(base)
    return 201, json.dumps({"data": resource, "links": resource["links"]}).encode()


def _relationships(member: bool) -> Writer:
    def write(
        state: SandboxState, params: dict[str, str], document: Any, at: str, base: str
    ) -> tuple[int, bytes]:
        profile_ids = validation.profile_relationships(document)
        list_id = _known_list(state, params["id"]).id
        identities = [_identity(state, i, profile_id) for i, profile_id in enumerate(profile_ids)]
        state.consent.change_lists(identities, list_id, member)
        return 204, b""

    return write


def _identity(state: SandboxState, index: int, profile_id: str) -> dict[str, Any]:
    profile = state.profiles.find("id", profile_id)
    if profile is None:
        raise Invalid(f"/data/{index}/id", f"A profile with id {profile_id} does not exist.")
    identity = {k: profile[k] for k in ("email", "phone_number") if profile.get(k)}
    if not identity:
        detail = "This sandbox keeps lists only for profiles with an email or a phone number."
        raise Invalid(f"/data/{index}/id", detail)
    return identity


def _known_list(state: SandboxState, list_id: str) -> ListRecord:
    record = state.lists.get(list_id)
    if record is None:
        raise ReadError(404, f"A list with id {list_id} does not exist.")
    return record


def _lists(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    clause = parse_filter(query, _LIST_FILTERS, "list")
    size, offset = page_size(query, default=10, most=10), page_offset(query)
    records = state.lists.all()
    if clause is not None:
        wanted = set(clause.values)
        records = [r for r in records if getattr(r, clause.field) in wanted]
    records = _sorted(records, one(query, "sort"))
    data = [record.resource(base) for record in records[offset : offset + size]]
    return {"data": data, "links": page_links(f"{base}{LISTS}/", query, size, offset, len(records))}


def _sorted(records: list[ListRecord], sort: str | None) -> list[ListRecord]:
    if sort is None:
        return records
    key = _LIST_SORTS.get(sort.removeprefix("-"))
    if key is None:
        raise ReadError(400, f"Invalid sort: {sort!r}.", "sort")
    return sorted(records, key=key, reverse=sort.startswith("-"))


def _members(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    list_id = _known_list(state, params["id"]).id
    clause = parse_filter(query, _MEMBER_FILTERS, "profile")
    extra = additional_fields(query)
    size, offset = page_size(query), page_offset(query)
    profiles = member_profiles(state, list_id)
    if clause is not None:
        wanted = {_folded(clause.field, value) for value in clause.values}
        profiles = [p for p in profiles if _folded(clause.field, p.get(clause.field)) in wanted]
    data = [profile_resource(state, p, extra, base) for p in profiles[offset : offset + size]]
    url = f"{base}{LISTS}/{list_id}/profiles/"
    return {"data": data, "links": page_links(url, query, size, offset, len(profiles))}


def _folded(field: str, value: Any) -> Any:
    return value.lower() if field == "email" and isinstance(value, str) else value


def member_profiles(state: SandboxState, list_id: str) -> list[dict[str, Any]]:
    """The stored profiles in the list (`ProfileStore` form)."""
    found = []
    for email, phone in state.consent.members(list_id):
        profile = (
            state.profiles.find("email", email)
            if email
            else state.profiles.find("phone_number", phone or "")
        )
        if profile is not None:
            found.append(profile)
    return found


def view(state: SandboxState) -> list[dict[str, Any]]:
    """GET /_sandbox/lists: each list, with its members' emails (or phone numbers)."""
    return [
        {
            "id": record.id,
            "name": record.name,
            "opt_in_process": record.opt_in_process,
            "created": record.created,
            "members": [p["email"] or p["phone_number"] for p in member_profiles(state, record.id)],
        }
        for record in state.lists.all()
    ]


READERS: dict[str, Reader] = {
    f"GET {LISTS}": _lists,
    f"GET {LISTS}/{{id}}/profiles": _members,
}
WRITERS: dict[str, Writer] = {
    f"POST {LISTS}": _create,
    f"POST {LIST_PROFILES}": _relationships(member=True),
    f"DELETE {LIST_PROFILES}": _relationships(member=False),
}
