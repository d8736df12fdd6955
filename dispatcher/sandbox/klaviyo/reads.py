"""The GET endpoints: bulk import jobs and their errors, profiles by identifier, a profile's
lists (the list endpoints' own reads are in list_routes.py). Each answers a JSON:API document
or raises `ReadError` (a Klaviyo error answer)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from dispatcher.sandbox.klaviyo import filters
from dispatcher.sandbox.klaviyo.consent import ProfileConsent
from dispatcher.sandbox.klaviyo.endpoints import IMPORT_JOBS, PROFILES
from dispatcher.sandbox.klaviyo.filters import ANY, EQUALS, Clause
from dispatcher.sandbox.klaviyo.state import SandboxState

Query = dict[str, list[str]]
# What get_profiles filters on (K-spec); the sandbox reads equals and any of these.
FILTER_FIELDS = ("id", "email", "phone_number", "external_id")
_PROFILE_FILTERS = dict.fromkeys(FILTER_FIELDS, frozenset({EQUALS, ANY}))
ADDITIONAL_FIELDS = ("subscriptions", "predictive_analytics")
LOCATION_FIELDS = (
    "address1",
    "address2",
    "city",
    "country",
    "latitude",
    "longitude",
    "region",
    "zip",
    "timezone",
    "ip",
)


class ReadError(Exception):
    def __init__(self, status: int, detail: str, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.parameter = parameter


Reader = Callable[[SandboxState, dict[str, str], Query, str], dict[str, Any]]


def one(query: Query, name: str) -> str | None:
    values = query.get(name)
    if values and len(values) > 1:
        raise ReadError(400, f"'{name}' may be given once.", name)
    return values[0] if values else None


def page_size(query: Query, default: int = 20, most: int = 100) -> int:
    text = one(query, "page[size]")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise ReadError(400, f"page[size] must be an integer from 1 to {most}.", "page[size]")
    return int(text)


def page_offset(query: Query) -> int:
    cursor = one(query, "page[cursor]")
    if cursor is None:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, binascii.Error):
        raise ReadError(400, "Invalid page cursor.", "page[cursor]") from None
    if offset < 0:
        raise ReadError(400, "Invalid page cursor.", "page[cursor]")
    return offset


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


def _page_url(url: str, size: int, offset: int) -> str:
    return f"{url}?{urlencode({'page[size]': size, 'page[cursor]': _cursor(offset)})}"


def page_links(url: str, query: Query, size: int, offset: int, total: int) -> dict[str, Any]:
    """self, prev and next of a page of `total` items at `offset`; every other parameter
    of the query (filter, sort, ...) is kept in each."""
    kept = {k: v[0] for k, v in query.items() if k not in ("page[size]", "page[cursor]")}

    def at(start: int) -> str:
        return f"{url}?{urlencode(kept | {'page[size]': size, 'page[cursor]': _cursor(start)})}"

    self_url = f"{url}?{urlencode({k: v[0] for k, v in query.items()})}" if query else url
    return {
        "self": self_url,
        "prev": at(max(0, offset - size)) if offset > 0 else None,
        "next": at(offset + size) if offset + size < total else None,
    }


def _import_job(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    job = state.imports.get(params["id"])
    if job is None:
        raise ReadError(404, f"A profile bulk import job with id {params['id']} does not exist.")
    self_url = f"{base}{IMPORT_JOBS}/{job.id}/"
    return {"data": job.resource(state.clock(), base), "links": {"self": self_url}}


def _import_errors(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    job = state.imports.get(params["id"])
    if job is None:
        raise ReadError(404, f"A profile bulk import job with id {params['id']} does not exist.")
    size, offset = page_size(query), page_offset(query)
    done = job.status(state.clock()) == "complete"
    errors = job.errors if done else []  # errors are known once the job has run
    page = errors[offset : offset + size]
    url = f"{base}{IMPORT_JOBS}/{job.id}/import-errors/"
    links = {"self": url, "prev": None, "next": None}
    if offset + size < len(errors):
        links["next"] = _page_url(url, size, offset + size)
    if offset > 0:
        links["prev"] = _page_url(url, size, max(0, offset - size))
    return {"data": [error.to_json() for error in page], "links": links}


def parse_filter(query: Query, allowed: dict[str, frozenset[str]], resource: str) -> Clause | None:
    """The query's filter clause (filters.py), None without one; 400 for a bad one."""
    text = one(query, "filter")
    if text is None:
        return None
    try:
        return filters.parse(text, allowed, resource)
    except ValueError as exc:
        raise ReadError(400, str(exc), "filter") from None


def additional_fields(query: Query) -> set[str]:
    text = one(query, "additional-fields[profile]")
    wanted = {part.strip() for part in (text or "").split(",") if part.strip()}
    unknown = wanted - set(ADDITIONAL_FIELDS)
    if unknown:
        detail = f"Invalid additional-fields[profile]: {sorted(unknown)}."
        raise ReadError(400, detail, "additional-fields[profile]")
    return wanted


def _profiles(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    """The profiles the filter names (any: in the order of its values, each once)."""
    clause = parse_filter(query, _PROFILE_FILTERS, "profile")
    if clause is None:
        detail = 'This sandbox needs a filter: equals(<field>,"<value>") or any(<field>,[...]).'
        raise ReadError(400, detail, "filter")
    extra = additional_fields(query)
    size, offset = page_size(query), page_offset(query)
    found: dict[str, dict[str, Any]] = {}
    for value in clause.values:
        profile = state.profiles.find(clause.field, value)
        if profile is not None:
            found.setdefault(profile["id"], profile)
    page = list(found.values())[offset : offset + size]
    data = [profile_resource(state, profile, extra, base) for profile in page]
    links = page_links(f"{base}{PROFILES}/", query, size, offset, len(found))
    return {"data": data, "links": links}


def profile_resource(
    state: SandboxState, profile: dict[str, Any], extra: set[str], base: str
) -> dict[str, Any]:
    """A stored profile as Klaviyo's profile resource."""
    self_url = f"{base}{PROFILES}/{profile['id']}/"
    location = {name: profile["location"].get(name) for name in LOCATION_FIELDS}
    location.update(profile["location"])
    attributes = {k: v for k, v in profile.items() if k not in ("id", "location", "properties")}
    attributes.update(last_event_date=None, location=location, properties=profile["properties"])
    if "subscriptions" in extra:
        consent = state.consent.find(profile["email"], profile["phone_number"])
        attributes["subscriptions"] = (consent or ProfileConsent(profile["email"])).subscriptions()
    if "predictive_analytics" in extra:
        attributes["predictive_analytics"] = None
    relationships = {
        name: {
            "links": {"self": f"{self_url}relationships/{name}/", "related": f"{self_url}{name}/"}
        }
        for name in ("lists", "segments")
    }
    return {
        "type": "profile",
        "id": profile["id"],
        "attributes": attributes,
        "relationships": relationships,
        "links": {"self": self_url},
    }


def _profile_lists(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    profile = state.profiles.find("id", params["id"])
    if profile is None:
        raise ReadError(404, f"A profile with id {params['id']} does not exist.")
    consent = state.consent.find(profile["email"], profile["phone_number"])
    list_ids = sorted(consent.lists) if consent is not None else []
    data = [state.lists.resource(list_id, base) for list_id in list_ids]
    self_url = f"{base}{PROFILES}/{profile['id']}/lists/"
    return {"data": data, "links": {"self": self_url, "prev": None, "next": None}}


READERS: dict[str, Reader] = {
    f"GET {IMPORT_JOBS}/{{id}}": _import_job,
    f"GET {IMPORT_JOBS}/{{id}}/import-errors": _import_errors,
    f"GET {PROFILES}": _profiles,
    f"GET {PROFILES}/{{id}}/lists": _profile_lists,
}
