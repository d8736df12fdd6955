"""Klaviyo lists: finding a segment's list by name (or creating it), and the calls that
put people into lists and take them out (shared/PROVIDERS-API.md, "Lists and segments").

    find_list:   GET  /api/lists?filter=equals(name,"...")&sort=created    75/s, 750/m
                 POST /api/lists  {"data":{"type":"list","attributes":{"name"}}}  -> 201
                                                        10/s, 150/m, 150 a day
    a list call: GET  /api/profiles?filter=any(email,[...])&page[size]=100  75/s, 750/m,
                      per 100 emails: the profile ids (list calls take ids, not emails)
                 POST (join) or DELETE (leave) /api/lists/{id}/relationships/profiles
                      {"data":[{"type":"profile","id"}]}, <= 1,000 -> 204     10/s, 150/m

A list call never creates a profile: an email Klaviyo holds no profile for is refused
(its item named) before the list is changed, so a late join cannot bring back someone
erased. Joining or leaving a list leaves consent as it is.

Klaviyo allows several lists of one name; the oldest of them is the one found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from dispatcher.providers.base import ListChange
from dispatcher.providers.errors import PermanentProviderError
from dispatcher.providers.klaviyo import bodies

# The list operations, by the name the gate and the metrics give their endpoint.
ADD_TO_LIST, REMOVE_FROM_LIST = "add_to_list", "remove_from_list"
OPERATIONS = (ADD_TO_LIST, REMOVE_FROM_LIST)
LISTS = "/api/lists"
MAX_PROFILES_PER_CALL = 1000  # add_profiles_to_list, remove_profiles_from_list
# Emails per profile lookup: one page of get_profiles at its largest page[size] holds them
# all (an email is one profile's), so a lookup is one request.
LOOKUP_BATCH = 100
# get_lists gives at most 10 a page; the page is searched for the exact name (see `find`).
LISTS_PAGE_SIZE = 10
OwnerT = TypeVar("OwnerT")


def plan(
    changes: Iterable[tuple[OwnerT, ListChange]],
) -> dict[tuple[str, bool], list[tuple[OwnerT, ListChange]]]:
    """The changes by (list id, member), in the order each pair was first seen."""
    calls: dict[tuple[str, bool], list[tuple[OwnerT, ListChange]]] = {}
    for owner, change in changes:
        calls.setdefault((change.list_id, change.member), []).append((owner, change))
    return calls


def operation(member: bool) -> str:
    return ADD_TO_LIST if member else REMOVE_FROM_LIST


def filter_string(value: str) -> str:
    """A string as Klaviyo's filter syntax takes it: in double quotes, with a quote or a
    backslash inside escaped by a backslash."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def find_query(name: str) -> dict[str, str]:
    """The lists named `name`, oldest first."""
    return {
        "filter": f"equals(name,{filter_string(name)})",
        "sort": "created",
        "page[size]": str(LISTS_PAGE_SIZE),
    }


def found(document: Any, name: str) -> str | None:
    """The id of the first list of the page named exactly `name` (should Klaviyo's equals
    ignore case, a list differing in case is not ours); None when there is none. Raises
    ValueError for an answer that is not a JSON:API collection."""
    for resource in _data_array(document):
        if not isinstance(resource, dict):
            continue
        identifier, attributes = resource.get("id"), resource.get("attributes")
        named = isinstance(attributes, dict) and attributes.get("name") == name
        if named and isinstance(identifier, str) and identifier:
            return identifier
    return None


def create_body(name: str) -> bodies.JsonObject:
    """The new list takes the account's default opt-in process."""
    return {"data": {"type": "list", "attributes": {"name": name}}}


def created_id(document: Any) -> str:
    """`data.id` of create_list's answer; ValueError when it has none."""
    data = document.get("data") if isinstance(document, dict) else None
    identifier = data.get("id") if isinstance(data, dict) else None
    if not isinstance(identifier, str) or not identifier:
        raise ValueError("the answer has no data.id")
    return identifier


def lookups(emails: Sequence[str]) -> list[list[str]]:
    """The emails to look up, each once (ignoring case), in batches of LOOKUP_BATCH."""
    first: dict[str, str] = {}
    for email in emails:
        first.setdefault(email.lower(), email)
    unique = list(first.values())
    return [unique[i : i + LOOKUP_BATCH] for i in range(0, len(unique), LOOKUP_BATCH)]


def profiles_query(emails: Sequence[str]) -> dict[str, str]:
    listed = ",".join(filter_string(email) for email in emails)
    return {"filter": f"any(email,[{listed}])", "page[size]": str(LOOKUP_BATCH)}


def profile_ids(document: Any) -> dict[str, str]:
    """Lower-cased email -> profile id, of a get_profiles page. Raises ValueError for an
    answer that is not a JSON:API collection."""
    ids: dict[str, str] = {}
    for resource in _data_array(document):
        if not isinstance(resource, dict):
            continue
        identifier, attributes = resource.get("id"), resource.get("attributes")
        email = attributes.get("email") if isinstance(attributes, dict) else None
        if isinstance(identifier, str) and identifier and isinstance(email, str):
            ids.setdefault(email.lower(), identifier)
    return ids


def no_profiles(
    call: str, emails: Sequence[str], missing: tuple[int, ...]
) -> PermanentProviderError:
    """The refusal of the items (`missing`: positions in `emails`) whose email Klaviyo
    holds no profile for, a few of them named."""
    named = sorted({emails[i] for i in missing})
    shown = ", ".join(named[:3]) + (", ..." if len(named) > 3 else "")
    return PermanentProviderError(
        f"{call}: no profile for {len(missing)} of {len(emails)} people ({shown})",
        code="profile_not_found",
        item_indexes=missing,
    )


def relationships_path(list_id: str) -> str:
    return f"{LISTS}/{quote(list_id, safe='')}/relationships/profiles"


def relationships_body(profile_ids: Sequence[str]) -> tuple[bodies.JsonObject, bodies.Blame]:
    """The body naming each profile once, and the blame from its pointers back to every
    item (position in `profile_ids`) behind an entry."""
    positions: dict[str, list[int]] = {}
    for index, profile_id in enumerate(profile_ids):
        positions.setdefault(profile_id, []).append(index)
    data = [{"type": "profile", "id": profile_id} for profile_id in positions]
    blame = bodies.Blame(prefix="/data", items=tuple(tuple(p) for p in positions.values()))
    return {"data": data}, blame


def _data_array(document: Any) -> list[Any]:
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise ValueError("the answer has no data array")
    return data
