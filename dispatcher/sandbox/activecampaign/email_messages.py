"""The email a campaign sends (shared/PROVIDERS-API.md, "Campaigns and messages"):

    POST /api/3/messages  {"message": {"fromname", "fromemail", "reply2", "subject",
                           "preheader_text"?, "html"?, "text"?}}
        -> 201 {"message": {..., "id": "<n>"}}; every id a string
        -> 422 {"errors": [{"title", "detail", "code": "field_missing", "source":
               {"pointer": "/data/attributes/<field>"}}]}, one error for each of fromname,
               fromemail, reply2 and subject missing (or empty)

Beyond the page (the sandbox decides): `email` is taken for `fromemail` (the page's schema
names it so, its examples `fromemail`); a field that is not text, or a fromemail or reply2
that is not an address, is 422 field_invalid at the same pointer. The subject and html are
the templates a campaign's send renders (personalization.py); they are kept as written."""

from __future__ import annotations

from typing import Any

from dispatcher.sandbox.activecampaign.body import Call
from dispatcher.sandbox.activecampaign.contacts import is_email
from dispatcher.sandbox.activecampaign.errors import ApiError
from dispatcher.sandbox.activecampaign.routing import Answer, route
from dispatcher.sandbox.activecampaign.store import Account, Row, public, timestamp

REQUIRED = ("fromname", "fromemail", "reply2", "subject")
OPTIONAL = ("preheader_text", "html", "text")
ADDRESSES = ("fromemail", "reply2")
_POINTER = "/data/attributes/"


def create_message(account: Account, call: Call) -> Answer:
    given = _message(call.document)
    errors = [_missing(name) for name in REQUIRED if not _given(given.get(name))]
    errors += [_invalid(name) for name in (*REQUIRED, *OPTIONAL) if _wrong(given, name)]
    if errors:
        raise ApiError(422, {"errors": errors})
    stamp = timestamp(call.now)
    row: Row = {name: given[name] for name in REQUIRED}
    row |= {name: given.get(name) or "" for name in OPTIONAL}
    row |= {"userid": "1", "cdate": stamp, "mdate": stamp}
    return 201, {"message": public(account.email_messages.insert(row))}


def _message(document: Any) -> dict[str, Any]:
    """The `message` object, with `email` read as `fromemail`; {} when there is none (every
    required field is then reported missing)."""
    given = document.get("message") if isinstance(document, dict) else None
    if not isinstance(given, dict):
        return {}
    if not _given(given.get("fromemail")) and _given(given.get("email")):
        given = given | {"fromemail": given["email"]}
    return given


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _wrong(given: dict[str, Any], name: str) -> bool:
    value = given.get(name)
    if value is None:
        return False
    if not isinstance(value, str):
        return True
    return name in ADDRESSES and bool(value.strip()) and not is_email(value.strip())


def _missing(name: str) -> dict[str, Any]:
    return _error("field_missing", "Missing attribute", name, f"{name} is required")


def _invalid(name: str) -> dict[str, Any]:
    detail = f"{name} must be an email address" if name in ADDRESSES else f"{name} is text"
    return _error("field_invalid", "Invalid attribute", name, detail)


def _error(code: str, title: str, name: str, detail: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "code": code, "source": {"pointer": _POINTER + name}}


ROUTES = [route("POST", "/api/3/messages", create_message)]
