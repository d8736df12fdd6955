"""The push token endpoints (shared/PROVIDERS-API.md, Klaviyo "push"; OpenAPI
create_push_token, get_push_token, delete_push_token), with Klaviyo's limits (rates.py):

    POST   /api/push-tokens        202, no body: the token with its profile (created when
                                   unknown), created or updated; 400 naming the pointer
    GET    /api/push-tokens/{id}   the token (its id is the token itself); 404 when unknown
    DELETE /api/push-tokens/{id}   204; 404 when unknown

A deleted profile (a data privacy deletion job) takes its tokens with it. GET
/_sandbox/push-tokens lists every token with its profile's email, for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from dispatcher.sandbox.klaviyo.push_tokens import PUSH_TOKENS, TokenRecord
from dispatcher.sandbox.klaviyo.reads import Query, Reader, ReadError
from dispatcher.sandbox.klaviyo.validation import (
    Invalid,
    _obj,
    _profile_attributes,
    _resource,
    _str,
)

PLATFORMS = ("android", "ios")
VENDORS = ("apns", "fcm")
ENABLEMENT = ("AUTHORIZED", "DENIED", "NOT_DETERMINED", "PROVISIONAL", "UNAUTHORIZED")
MAX_TOKEN = 1024


def parse_create(document: Any) -> tuple[TokenRecord, dict[str, Any]]:
    """A create_push_token body: the token's record and its profile's attributes."""
    data = _obj(_obj(document, "").get("data"), "/data")
    if data.get("type") != "push-token":
        raise Invalid("/data/type", "must be 'push-token'")
    pointer = "/data/attributes"
    attributes = _obj(data.get("attributes"), pointer)
    token = _str(attributes.get("token"), f"{pointer}/token", max_len=MAX_TOKEN)
    platform = _choice(attributes, "platform", PLATFORMS, pointer)
    vendor = _choice(attributes, "vendor", VENDORS, pointer)
    status = attributes.get("enablement_status", "AUTHORIZED")
    if status not in ENABLEMENT:
        raise Invalid(f"{pointer}/enablement_status", f"must be one of {ENABLEMENT}")
    profile_pointer = f"{pointer}/profile"
    profile = _obj(attributes.get("profile"), profile_pointer)
    person = _resource(profile.get("data"), f"{profile_pointer}/data", "profile")
    _profile_attributes(person, f"{profile_pointer}/data/attributes")
    email = person.get("email")
    record = TokenRecord(
        token,
        platform,
        vendor,
        status,
        email.lower() if email else None,
        person.get("phone_number"),
        "",
    )
    return record, person


def _choice(attributes: dict[str, Any], name: str, allowed: tuple[str, ...], pointer: str) -> str:
    value = attributes.get(name)
    if value not in allowed:
        raise Invalid(f"{pointer}/{name}", f"must be one of {allowed}")
    return str(value)


def _resource_of(record: TokenRecord, base: str) -> dict[str, Any]:
    return {
        "type": "push-token",
        "id": record.token,
        "attributes": {
            "created": record.updated,
            "token": record.token,
            "enablement_status": record.enablement_status,
            "platform": record.platform,
            "vendor": record.vendor,
        },
        "links": {"self": f"{base}{PUSH_TOKENS}/{quote(record.token, safe='')}/"},
    }


def _create(
    state: Any, params: dict[str, str], document: Any, at: str, base: str
) -> tuple[int, bytes]:
    record, person = parse_create(document)
    state.profiles.upsert(person, at)
    record.updated = at
    state.push_tokens.put(record)
    return 202, b""


def _one(state: Any, params: dict[str, str], query: Query, base: str) -> Any:
    record = state.push_tokens.get(unquote(params["id"]))
    if record is None:
        raise _unknown(params["id"])
    resource = _resource_of(record, base)
    return {"data": resource, "links": resource["links"]}


def _delete(state: Any, params: dict[str, str]) -> None:
    if not state.push_tokens.delete(unquote(params["id"])):
        raise _unknown(params["id"])


def _unknown(token: str) -> ReadError:
    return ReadError(404, f"A push token with id {token[:80]} does not exist.")


READERS: dict[str, Reader] = {f"GET {PUSH_TOKENS}/{{id}}": _one}
WRITERS = {f"POST {PUSH_TOKENS}": _create}
REMOVERS: dict[str, Callable[[Any, dict[str, str]], None]] = {
    f"DELETE {PUSH_TOKENS}/{{id}}": _delete
}
