"""Klaviyo's bulk profile import (full contact sync): the job's request body, and
its status and import errors read back.

    POST /api/profile-bulk-import-jobs                  <= 10,000 profiles, 5 MB -> 202 job
    GET  /api/profile-bulk-import-jobs/{id}             status, total/completed/failed counts
    GET  /api/profile-bulk-import-jobs/{id}/import-errors   paged by `links.next`

A profile goes in as `POST /api/profile-import` takes it (`bodies.profile_import`). A job for
a campaign names its list (`relationships.lists`): each profile imported also joins it.
The job has no `subscriptions` attribute: consent is set afterwards by the
subscription and suppression jobs `plan_consent` plans. The job is an upsert:
importing a profile again changes nothing but what changed meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dispatcher.providers.base import ImportFailure, ImportStatus, Profile
from dispatcher.providers.klaviyo import bodies

JOBS = "/api/profile-bulk-import-jobs"
JOB_TYPE = "profile-bulk-import-job"
# Klaviyo's statuses of a job that will not change any more.
FINISHED = frozenset({"complete", "cancelled"})
ERRORS_PAGE_SIZE = 100  # the most Klaviyo gives per page
# A throttled page of import errors is asked for again this many times in all,
# after its Retry-After (at most MAX_PAGE_WAIT_S: the endpoint's windows are a
# second and a minute).
THROTTLED_PAGE_ATTEMPTS = 5
MAX_PAGE_WAIT_S = 60.0
_MAX_REASON = 300
# The longest list id the job's counted wrapping makes room for (Klaviyo's are six
# characters); a longer one still goes, its job's real size checked before it is sent.
MAX_LIST_ID_CHARS = 64


def job_path(job_id: str) -> str:
    return f"{JOBS}/{job_id}"


def errors_path(job_id: str) -> str:
    return f"{JOBS}/{job_id}/import-errors"


def job_body(profiles: Sequence[Profile], list_id: str | None = None) -> tuple[bytes, bodies.Blame]:
    """The job's body, encoded, and the blame from its error pointers to `profiles`."""
    resources = [bodies.profile_import(profile)["data"] for profile in profiles]
    job: bodies.JsonObject = {"type": JOB_TYPE, "attributes": {"profiles": {"data": resources}}}
    if list_id is not None:
        job["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    body = {"data": job}
    blame = bodies.Blame(
        prefix=bodies.PROFILES_PREFIX, items=tuple((i,) for i in range(len(profiles)))
    )
    return bodies.encode(body), blame


def wrapping_bytes() -> int:
    """A job's body besides its profiles and the commas between them, with a list named."""
    empty, _ = job_body([], "x" * MAX_LIST_ID_CHARS)
    return len(empty)


def job_id(document: Any) -> str:
    """`data.id` of a job document; ValueError when it has none."""
    job = _data(document)
    identifier = job.get("id")
    if not isinstance(identifier, str) or not identifier:
        raise ValueError("the job document has no data.id")
    return identifier


def status(document: Any, failures: Sequence[ImportFailure] = ()) -> ImportStatus:
    """The job document as an ImportStatus (ValueError when it is not one)."""
    job = _data(document)
    attributes = job.get("attributes")
    if not isinstance(attributes, dict) or not isinstance(attributes.get("status"), str):
        raise ValueError("the job document has no attributes.status")
    return ImportStatus(
        job_id=job_id(document),
        done=attributes["status"] in FINISHED,
        total=_count(attributes, "total_count"),
        completed=_count(attributes, "completed_count"),
        failed=_count(attributes, "failed_count"),
        failures=tuple(failures),
    )


def failures(document: Any) -> tuple[list[ImportFailure], str | None]:
    """One page of import errors: the people refused (by the email of the profile
    each error came from) and the next page's URL (None: the last page). An error
    whose profile has no email cannot be matched to a person and is left out."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise ValueError("an import-errors page has a data array")
    found = []
    for error in document["data"]:
        attributes = error.get("attributes") if isinstance(error, dict) else None
        if not isinstance(attributes, dict):
            continue
        email = _payload_email(attributes.get("original_payload"))
        if email:
            found.append(ImportFailure(email, _reason(attributes)))
    links = document.get("links")
    following = links.get("next") if isinstance(links, dict) else None
    return found, following if isinstance(following, str) and following else None


def _data(document: Any) -> dict[str, Any]:
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise ValueError("the job document has no data object")
    return data


def _count(attributes: dict[str, Any], name: str) -> int:
    value = attributes.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _payload_email(payload: Any) -> str:
    """The email of the profile an error came from: Klaviyo echoes the profile
    resource (or its attributes) as `original_payload`."""
    if not isinstance(payload, dict):
        return ""
    attributes = payload.get("attributes", payload)
    email = attributes.get("email") if isinstance(attributes, dict) else None
    return email if isinstance(email, str) else ""


def _reason(attributes: dict[str, Any]) -> str:
    parts = [attributes.get(key) for key in ("code", "detail", "title")]
    text = ": ".join(str(part) for part in parts[:2] if part) or str(parts[2] or "refused")
    return text[:_MAX_REASON]
