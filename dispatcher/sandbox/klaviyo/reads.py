"""The GET endpoints: bulk import jobs and their errors, profiles by identifier, a profile's
lists. Each answers a JSON:API document or raises `ReadError` (a Klaviyo error answer)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from dispatcher.sandbox.klaviyo.consent import ProfileConsent
from dispatcher.sandbox.klaviyo.endpoints import IMPORT_JOBS, PROFILES
from dispatcher.sandbox.klaviyo.state import SandboxState

Query = dict[str, list[str]]
# equals(email,"a@b.c"): the one filter form the sandbox reads (Klaviyo quotes strings).
_EQUALS = re.compile(r'^equals\((?P<field>[a-z_]+),"(?P<value>(?:[^"\\]|\\.)*)"\)$')
FILTER_FIELDS = ("id", "email", "phone_number", "external_id")
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


def _one(query: Query, name: str) -> str | None:
    values = query.get(name)
    if values and len(values) > 1:
        raise ReadError(400, f"'{name}' may be given once.", name)
    return values[0] if values else None


def _page_size(query: Query) -> int:
    text = _one(query, "page[size]")
    if text is None:
        return 20
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise ReadError(400, "page[size] must be an integer from 1 to 100.", "page[size]")
    return int(text)


def _page_offset(query: Query) -> int:
    cursor = _one(query, "page[cursor]")
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
    size, offset = _page_size(query), _page_offset(query)
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


def parse_filter(text: str | None) -> tuple[str, str]:
    """(field, value) of `equals(field,"value")`; 400 for anything else."""
    if text is None:
        raise ReadError(400, 'This sandbox needs a filter: equals(<field>,"<value>").', "filter")
    found = _EQUALS.match(text)
    if found is None:
        raise ReadError(400, f"Invalid filter provided: {text!r}.", "filter")
    field, value = found["field"], re.sub(r"\\(.)", r"\1", found["value"])
    if field not in FILTER_FIELDS:
        detail = f"'{field}' is not a valid field for the resource 'profile'."
        raise ReadError(400, detail, "filter")
    return field, value


def _additional_fields(query: Query) -> set[str]:
    text = _one(query, "additional-fields[profile]")
    wanted = {part.strip() for part in (text or "").split(",") if part.strip()}
    unknown = wanted - set(ADDITIONAL_FIELDS)
    if unknown:
        detail = f"Invalid additional-fields[profile]: {sorted(unknown)}."
        raise ReadError(400, detail, "additional-fields[profile]")
    return wanted


def _profiles(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    field, value = parse_filter(_one(query, "filter"))
    extra = _additional_fields(query)
    _page_size(query)
    found = state.profiles.find(field, value)
    data = [] if found is None else [profile_resource(state, found, extra, base)]
    self_url = f"{base}{PROFILES}/?{urlencode({k: v[0] for k, v in query.items()})}"
    return {"data": data, "links": {"self": self_url, "prev": None, "next": None}}


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
    data = [
        {
            "type": "list",
            "id": list_id,
            # The sandbox keeps no list records: only the ids a profile joined.
            "attributes": {"name": None, "created": None, "updated": None, "opt_in_process": None},
            "links": {"self": f"{base}/api/lists/{list_id}/"},
        }
        for list_id in list_ids
    ]
    self_url = f"{base}{PROFILES}/{profile['id']}/lists/"
    return {"data": data, "links": {"self": self_url, "prev": None, "next": None}}


READERS: dict[str, Reader] = {
    f"GET {IMPORT_JOBS}/{{id}}": _import_job,
    f"GET {IMPORT_JOBS}/{{id}}/import-errors": _import_errors,
    f"GET {PROFILES}": _profiles,
    f"GET {PROFILES}/{{id}}/lists": _profile_lists,
}
