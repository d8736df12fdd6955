"""Body-shape checks for the Klaviyo subset the sandbox speaks.

Each validator takes the parsed document and returns the event `unique_id`s it carries (empty
for non-event routes), or raises `Invalid` with a JSON pointer into the body. Checks are kept to
what Klaviyo rejects with a 400 and that a client could plausibly get wrong; they are plain dict
lookups so a 1,000-event bulk body costs a few milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_EVENTS = 1000
MAX_SUBSCRIPTIONS = 1000
MAX_UNSUBSCRIPTIONS = 100
MAX_SUPPRESSIONS = 100
MAX_METRIC_NAME = 127
MAX_IMPORT_PROFILES = 10_000
MAX_LIST_PROFILES = 1000  # add_profiles_to_list, remove_profiles_from_list
OPT_IN_PROCESSES = ("double_opt_in", "single_opt_in")
PROFILE_IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "id")

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_EVENTS_BULK = "/data/attributes/events-bulk-create/data"
_PROFILES = "/data/attributes/profiles/data"
IMPORT_JOB_TYPE = "profile-bulk-import-job"


class Invalid(Exception):
    def __init__(self, pointer: str, detail: str) -> None:
        super().__init__(detail)
        self.pointer = pointer
        self.detail = detail


@dataclass(frozen=True)
class Route:
    path: str
    validate: Callable[[Any], list[str]]
    success: int  # 202 for jobs; profile import answers 201/200 itself
    max_bytes: int


def _obj(value: Any, pointer: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(pointer, "must be an object")
    return value


def _arr(value: Any, pointer: str, limit: int) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise Invalid(pointer, "must be a non-empty array")
    if len(value) > limit:
        raise Invalid(pointer, f"at most {limit} items are allowed, got {len(value)}")
    return value


def _resource(value: Any, pointer: str, type_: str) -> dict[str, Any]:
    """The attributes of a resource object of `type_` at `pointer`."""
    resource = _obj(value, pointer)
    if resource.get("type") != type_:
        raise Invalid(f"{pointer}/type", f"must be {type_!r}")
    return _obj(resource.get("attributes"), f"{pointer}/attributes")


def _str(value: Any, pointer: str, *, max_len: int = 100_000) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise Invalid(pointer, f"must be a non-empty string of at most {max_len} characters")
    return value


def _email(value: Any, pointer: str) -> None:
    text = _str(value, pointer, max_len=254)
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or " " in text:
        raise Invalid(pointer, f"Invalid email address: {text!r}")


def _phone(value: Any, pointer: str) -> None:
    if not isinstance(value, str) or not _E164.match(value):
        raise Invalid(pointer, "phone_number must be in E.164 format")


def _profile_attributes(attributes: dict[str, Any], pointer: str) -> None:
    if not any(attributes.get(key) for key in PROFILE_IDENTIFIERS):
        raise Invalid(pointer, "a profile identifier (email, phone_number, ...) is required")
    if "email" in attributes:
        _email(attributes["email"], f"{pointer}/email")
    if "phone_number" in attributes:
        _phone(attributes["phone_number"], f"{pointer}/phone_number")


def _event_attributes(attributes: dict[str, Any], pointer: str) -> str | None:
    _obj(attributes.get("properties"), f"{pointer}/properties")
    metric = _obj(attributes.get("metric"), f"{pointer}/metric")
    metric_attributes = _resource(metric.get("data"), f"{pointer}/metric/data", "metric")
    name_pointer = f"{pointer}/metric/data/attributes/name"
    _str(metric_attributes.get("name"), name_pointer, max_len=MAX_METRIC_NAME)
    time = attributes.get("time")
    if time is not None:
        try:
            datetime.fromisoformat(time)
        except (TypeError, ValueError):
            raise Invalid(f"{pointer}/time", "must be an ISO 8601 date-time") from None
    value = attributes.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise Invalid(f"{pointer}/value", "must be a number")
    currency = attributes.get("value_currency")
    if currency is not None and (not isinstance(currency, str) or len(currency) != 3):
        raise Invalid(f"{pointer}/value_currency", "must be an ISO 4217 currency code")
    unique_id = attributes.get("unique_id")
    if unique_id is not None:
        _str(unique_id, f"{pointer}/unique_id")
    return unique_id


def _event_profile(attributes: dict[str, Any], pointer: str) -> None:
    profile = _obj(attributes.get("profile"), pointer)
    profile_attributes = _resource(profile.get("data"), f"{pointer}/data", "profile")
    _profile_attributes(profile_attributes, f"{pointer}/data/attributes")
    for key in ("location", "properties"):  # applied to the profile, as profile-import's
        if profile_attributes.get(key) is not None:
            _obj(profile_attributes[key], f"{pointer}/data/attributes/{key}")


def profile_import(document: Any) -> list[str]:
    attributes = _resource(_obj(document, "").get("data"), "/data", "profile")
    _profile_attributes(attributes, "/data/attributes")
    for key in ("location", "properties"):
        if key in attributes and attributes[key] is not None:
            _obj(attributes[key], f"/data/attributes/{key}")
    return []


def event_create(document: Any) -> list[str]:
    attributes = _resource(_obj(document, "").get("data"), "/data", "event")
    _event_profile(attributes, "/data/attributes/profile")
    unique_id = _event_attributes(attributes, "/data/attributes")
    return [unique_id] if unique_id else []


def events_bulk(document: Any) -> list[str]:
    attributes = _resource(_obj(document, "").get("data"), "/data", "event-bulk-create-job")
    container = _obj(attributes.get("events-bulk-create"), "/data/attributes/events-bulk-create")
    entries = _arr(container.get("data"), _EVENTS_BULK, MAX_EVENTS)
    unique_ids: list[str] = []
    total = 0
    for i, entry in enumerate(entries):
        pointer = f"{_EVENTS_BULK}/{i}/attributes"
        entry_attributes = _resource(entry, f"{_EVENTS_BULK}/{i}", "event-bulk-create")
        _event_profile(entry_attributes, f"{pointer}/profile")
        events_container = _obj(entry_attributes.get("events"), f"{pointer}/events")
        events = _arr(events_container.get("data"), f"{pointer}/events/data", MAX_EVENTS)
        total += len(events)
        if total > MAX_EVENTS:
            raise Invalid(_EVENTS_BULK, f"at most {MAX_EVENTS} events are allowed per job")
        for j, event in enumerate(events):
            event_pointer = f"{pointer}/events/data/{j}"
            event_attributes = _resource(event, event_pointer, "event")
            unique_id = _event_attributes(event_attributes, f"{event_pointer}/attributes")
            if unique_id:
                unique_ids.append(unique_id)
    return unique_ids


def _subscriptions(
    attributes: dict[str, Any], pointer: str, consent: str, historical: bool
) -> None:
    subscriptions = _obj(attributes.get("subscriptions"), f"{pointer}/subscriptions")
    if not subscriptions:
        raise Invalid(f"{pointer}/subscriptions", "at least one channel is required")
    for channel, kinds in subscriptions.items():
        channel_pointer = f"{pointer}/subscriptions/{channel}"
        if channel not in ("email", "sms"):
            raise Invalid(channel_pointer, "channel must be 'email' or 'sms'")
        needed = "email" if channel == "email" else "phone_number"
        if not attributes.get(needed):
            raise Invalid(f"{pointer}/{needed}", f"{needed} is required for {channel} consent")
        for kind, setting in _obj(kinds, channel_pointer).items():
            setting_pointer = f"{channel_pointer}/{kind}"
            if _obj(setting, setting_pointer).get("consent") != consent:
                raise Invalid(f"{setting_pointer}/consent", f"must be {consent!r}")
            if "consented_at" in setting and not historical:
                raise Invalid(
                    f"{setting_pointer}/consented_at",
                    "consented_at is only allowed when historical_import is true",
                )


def _list_relationship(data: dict[str, Any]) -> None:
    relationships = data.get("relationships")
    if relationships is None:
        return
    lst = _obj(_obj(relationships, "/data/relationships").get("list"), "/data/relationships/list")
    target = _obj(lst.get("data"), "/data/relationships/list/data")
    if target.get("type") != "list":
        raise Invalid("/data/relationships/list/data/type", "must be 'list'")
    _str(target.get("id"), "/data/relationships/list/data/id")


def _subscription_job(job_type: str, consent: str, limit: int) -> Callable[[Any], list[str]]:
    def validate(document: Any) -> list[str]:
        data = _obj(_obj(document, "").get("data"), "/data")
        attributes = _resource(data, "/data", job_type)
        historical = attributes.get("historical_import") is True
        profiles = _obj(attributes.get("profiles"), "/data/attributes/profiles")
        for i, item in enumerate(_arr(profiles.get("data"), _PROFILES, limit)):
            pointer = f"{_PROFILES}/{i}/attributes"
            profile = _resource(item, f"{_PROFILES}/{i}", "profile")
            _profile_attributes(profile, pointer)
            _subscriptions(profile, pointer, consent, historical)
        _list_relationship(data)
        return []

    return validate


def _suppression_job(job_type: str) -> Callable[[Any], list[str]]:
    def validate(document: Any) -> list[str]:
        data = _obj(document, "").get("data")
        attributes = _resource(data, "/data", job_type)
        profiles = _obj(attributes.get("profiles"), "/data/attributes/profiles")
        for i, item in enumerate(_arr(profiles.get("data"), _PROFILES, MAX_SUPPRESSIONS)):
            profile = _resource(item, f"{_PROFILES}/{i}", "profile")
            _email(profile.get("email"), f"{_PROFILES}/{i}/attributes/email")
        return []

    return validate


def deletion_job(document: Any) -> list[str]:
    attributes = _resource(_obj(document, "").get("data"), "/data", "data-privacy-deletion-job")
    profile = _obj(attributes.get("profile"), "/data/attributes/profile")
    data = _obj(profile.get("data"), "/data/attributes/profile/data")
    profile_attributes = _resource(data, "/data/attributes/profile/data", "profile")
    given = [k for k in ("email", "phone_number") if profile_attributes.get(k)]
    given += ["id"] if data.get("id") else []
    if len(given) != 1:
        raise Invalid("/data/attributes/profile/data", "exactly one identifier is required")
    if given == ["email"]:
        _email(profile_attributes["email"], "/data/attributes/profile/data/attributes/email")
    return []


def bulk_import(document: Any) -> list[str]:
    """The job's envelope only: a profile Klaviyo cannot import becomes an import error of
    the job (see `import_profile_errors`), not a 400 for the whole request."""
    data = _obj(_obj(document, "").get("data"), "/data")
    attributes = _resource(data, "/data", IMPORT_JOB_TYPE)
    profiles = _obj(attributes.get("profiles"), "/data/attributes/profiles")
    for i, item in enumerate(_arr(profiles.get("data"), _PROFILES, MAX_IMPORT_PROFILES)):
        _resource(item, f"{_PROFILES}/{i}", "profile")
    import_list_ids(data)
    return []


def import_list_ids(data: dict[str, Any]) -> list[str]:
    """The lists an import job's profiles join (`relationships.lists.data[].id`)."""
    relationships = data.get("relationships")
    if relationships is None:
        return []
    pointer = "/data/relationships/lists"
    lists = _obj(_obj(relationships, "/data/relationships").get("lists"), pointer)
    targets = lists.get("data")
    if not isinstance(targets, list):
        raise Invalid(f"{pointer}/data", "must be an array")
    return _identifiers(targets, f"{pointer}/data", "list")


def list_create(document: Any) -> tuple[str, str | None]:
    """The name and opt-in process (None: the account's default) of a create_list body."""
    attributes = _resource(_obj(document, "").get("data"), "/data", "list")
    name = _str(attributes.get("name"), "/data/attributes/name")
    if not name.strip():
        raise Invalid("/data/attributes/name", "must not be blank")
    opt_in_process = attributes.get("opt_in_process")
    if opt_in_process is not None and opt_in_process not in OPT_IN_PROCESSES:
        raise Invalid("/data/attributes/opt_in_process", f"must be one of {OPT_IN_PROCESSES}")
    return name, opt_in_process


def profile_relationships(document: Any) -> list[str]:
    """The profile ids of an add_profiles_to_list or remove_profiles_from_list body."""
    entries = _arr(_obj(document, "").get("data"), "/data", MAX_LIST_PROFILES)
    return _identifiers(entries, "/data", "profile")


def _identifiers(entries: list[Any], pointer: str, type_: str) -> list[str]:
    """The ids of JSON:API resource identifiers ({type, id}), each of `type_`."""
    ids = []
    for i, entry in enumerate(entries):
        if _obj(entry, f"{pointer}/{i}").get("type") != type_:
            raise Invalid(f"{pointer}/{i}/type", f"must be '{type_}'")
        ids.append(_str(entry.get("id"), f"{pointer}/{i}/id"))
    return ids


def import_profile_errors(attributes: dict[str, Any], index: int) -> Invalid | None:
    """Why Klaviyo would not import the profile at `index` of a job, if it would not."""
    pointer = f"{_PROFILES}/{index}/attributes"
    try:
        _profile_attributes(attributes, pointer)
        for key in ("location", "properties"):
            if attributes.get(key) is not None:
                _obj(attributes[key], f"{pointer}/{key}")
    except Invalid as exc:
        return exc
    return None


_KB = 1024
ROUTES = {
    route.path: route
    for route in (
        Route("/api/profile-import", profile_import, 201, 100 * _KB),
        Route("/api/events", event_create, 202, 5 * _KB * _KB),
        Route("/api/event-bulk-create-jobs", events_bulk, 202, 5 * _KB * _KB),
        Route(
            "/api/profile-subscription-bulk-create-jobs",
            _subscription_job(
                "profile-subscription-bulk-create-job", "SUBSCRIBED", MAX_SUBSCRIPTIONS
            ),
            202,
            5 * _KB * _KB,
        ),
        Route(
            "/api/profile-subscription-bulk-delete-jobs",
            _subscription_job(
                "profile-subscription-bulk-delete-job", "UNSUBSCRIBED", MAX_UNSUBSCRIPTIONS
            ),
            202,
            5 * _KB * _KB,
        ),
        Route(
            "/api/profile-suppression-bulk-create-jobs",
            _suppression_job("profile-suppression-bulk-create-job"),
            202,
            5 * _KB * _KB,
        ),
        Route(
            "/api/profile-suppression-bulk-delete-jobs",
            _suppression_job("profile-suppression-bulk-delete-job"),
            202,
            5 * _KB * _KB,
        ),
        Route("/api/data-privacy-deletion-jobs", deletion_job, 202, 100 * _KB),
        Route("/api/profile-bulk-import-jobs", bulk_import, 202, 5 * _KB * _KB),
    )
}


def profile_key(attributes: dict[str, Any]) -> str:
    """The identity a profile is keyed on (call after its attributes were validated)."""
    for key in PROFILE_IDENTIFIERS:
        if attributes.get(key):
            value = str(attributes[key])
            return f"{key}:{value.lower() if key == 'email' else value}"
    raise Invalid("/data/attributes", "no profile identifier")
