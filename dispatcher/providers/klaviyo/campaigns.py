"""Klaviyo campaigns: a campaign part's content in Klaviyo's template syntax, the request
bodies of a send, and its answers read (the client makes the requests, `send_campaign`).

    find:    GET  /api/campaigns?filter=and(equals(messages.channel,'email'),contains(name,"..."))
                  every page (links.next); the exact name is matched in the answers
    create:  POST /api/campaigns  {name, audiences.included [list], send_strategy, one
                  campaign-message with the channel's definition}          -> 201, Draft
    email:   POST /api/templates  {name, editor_type CODE, html}            -> 201 template
             POST /api/campaign-message-assign-template                      -> 200
             DELETE /api/templates/{id}  (the message keeps its own copy, and the account
                  holds at most 1,000 templates)
    send:    POST /api/campaign-send-jobs  {id: campaign id}  -> 202; the campaign becomes
                  Scheduled (a static datetime) or Sending, then Sent

Template syntax (Django-like): `email`, `first_name` and `last_name` are profile fields
(`{{ first_name|default:"FB" }}`); every other variable is a profile property read with
`lookup` (`{{ person|lookup:"phone_number"|default:"FB" }}`), the recipient's preference link
the property `PREFERENCES_URL_PROPERTY`. A fallback is a string literal in double quotes, a
backslash or a quote in it escaped by a backslash. Klaviyo has no escape for a tag's
delimiters in text, so text (or a fallback) holding one is refused rather than sent broken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from dispatcher.providers.base import (
    PREFERENCES_URL_PROPERTY,
    CampaignSend,
    TemplatePart,
    TemplateVariable,
)
from dispatcher.providers.errors import PermanentProviderError
from dispatcher.providers.klaviyo.bodies import JsonObject
from dispatcher.providers.klaviyo.lists_calls import filter_string
from dispatcher.providers.timefmt import iso_time

CAMPAIGNS = "/api/campaigns"
TEMPLATES = "/api/templates"
TEMPLATE_ASSIGNMENTS = "/api/campaign-message-assign-template"
SEND_JOBS = "/api/campaign-send-jobs"
DRAFT = "Draft"
# Our channels by Klaviyo's name for them (a message's `channel`, the campaigns filter's).
CHANNELS = {"email": "email", "sms": "sms", "push": "mobile_push"}
# The variables Klaviyo has as profile fields; every other is a profile property.
_PROFILE_FIELDS = frozenset({"email", "first_name", "last_name"})
# Variables whose profile property is named otherwise than the variable.
_PROPERTY_NAMES = {"phone": "phone_number", "unsubscribe_url": PREFERENCES_URL_PROPERTY}
# Our other contact fields, custom properties at Klaviyo under their own names (as the
# profile import writes them, bodies.profile_import).
_OWN_PROPERTIES = frozenset({"location", "loyalty_tier", "language", "timezone"})
CUSTOM = "custom"
# What opens or closes a tag, a block or a comment in Klaviyo's (Django's) syntax. `{#`
# besides those the spec names: Django drops `{# ... #}` from what it renders.
_DELIMITERS = ("{{", "}}", "{%", "%}", "{#")
# What opens one: outside a tag, Django copies `}}` and `%}` as text (minified CSS in an
# email's HTML is full of `}}`), so only these make text unwritable.
_OPENERS = ("{{", "{%", "{#")
_LINE_BREAKS = ("\n", "\r")


@dataclass(frozen=True)
class Content:
    """A send's texts in Klaviyo's syntax: the subject (push: the title; SMS: ""), the body
    (email: the HTML of its template)."""

    channel: str  # Klaviyo's
    subject: str
    body: str


@dataclass(frozen=True)
class Campaign:
    """A campaign as Klaviyo answered it: its status and its messages' ids."""

    id: str
    name: str
    status: str
    created_at: str
    message_ids: tuple[str, ...]

    @property
    def draft(self) -> bool:
        return self.status == DRAFT


# --- the template --------------------------------------------------------------------------


def content(send: CampaignSend) -> Content:
    """The send's texts translated; PermanentProviderError for a channel Klaviyo's campaigns
    lack, a campaign without a name (it is found again by it) or a template the syntax
    cannot carry."""
    if not send.name.strip():
        raise PermanentProviderError("a Klaviyo campaign needs a name", code="invalid")
    channel = CHANNELS.get(send.channel)
    if channel is None:
        raise PermanentProviderError(
            f"Klaviyo campaign {send.name!r}: no campaigns on the channel {send.channel!r}",
            code="unsupported",
        )
    subject = template(send.subject, f"campaign {send.name!r} subject")
    return Content(channel, subject, template(send.body, f"campaign {send.name!r} body"))


def template(parts: Sequence[TemplatePart], what: str) -> str:
    """`parts` in Klaviyo's syntax; `what` names them in a refusal."""
    merged = merged_text(parts)
    written: list[str] = []
    for index, part in enumerate(merged):
        if isinstance(part, TemplateVariable):
            written.append(variable(part, what))
        else:
            _check_text(part, _before_variable(merged, index), what)
            written.append(part)
    return "".join(written)


def merged_text(parts: Sequence[TemplatePart]) -> list[TemplatePart]:
    """`parts` with adjacent texts joined, so a delimiter split between two is seen."""
    merged: list[TemplatePart] = []
    for part in parts:
        previous = merged[-1] if merged else None
        if isinstance(part, str) and isinstance(previous, str):
            merged[-1] = previous + part
        else:
            merged.append(part)
    return merged


def variable(part: TemplateVariable, what: str) -> str:
    """`{{ <value>|default:"<fallback>" }}`, without the default when there is no fallback."""
    expression = _value(part.path, what)
    if part.fallback is not None:
        _check_fallback(part.fallback, what)
        expression += f"|default:{string_literal(part.fallback)}"
    return "{{ " + expression + " }}"


def string_literal(text: str) -> str:
    """`text` as a string literal of the template syntax: in double quotes, a backslash or a
    quote escaped by a backslash (as Klaviyo's filter strings are written)."""
    return filter_string(text)


def _value(path: tuple[str, ...], what: str) -> str:
    if len(path) == 1 and path[0] in _PROFILE_FIELDS:
        return path[0]
    if len(path) == 1 and (path[0] in _OWN_PROPERTIES or path[0] in _PROPERTY_NAMES):
        return _lookup(_PROPERTY_NAMES.get(path[0], path[0]), what)
    if len(path) == 2 and path[0] == CUSTOM and path[1]:
        return _lookup(path[1], what)
    raise PermanentProviderError(
        f"Klaviyo {what}: no profile value for the variable {'.'.join(path)!r}",
        code="template",
    )


def _lookup(name: str, what: str) -> str:
    _check_fallback(name, what)  # a property name is a string literal too
    return f"person|lookup:{string_literal(name)}"


def _before_variable(parts: Sequence[TemplatePart], index: int) -> bool:
    following = parts[index + 1] if index + 1 < len(parts) else None
    return isinstance(following, TemplateVariable)


def _check_text(text: str, before_variable: bool, what: str) -> None:
    """Refuses text holding what opens a tag, or ending in `{` right before a variable (it
    would open `{{{`, which reads as a tag of `{ ...`)."""
    found = next((d for d in _OPENERS if d in text), None)
    if found is not None:
        raise _refused(what, f"its text holds {found!r}")
    if before_variable and text.endswith("{"):
        raise _refused(what, "its text ends in '{' right before a variable")


def _check_fallback(text: str, what: str) -> None:
    """A string literal must not close its tag (`}}`) nor hold what the spec refuses in
    text; Django reads a tag on one line only."""
    found = next((d for d in (*_DELIMITERS, *_LINE_BREAKS) if d in text), None)
    if found is not None:
        raise _refused(what, f"a fallback or property name holds {found!r}")


def _refused(what: str, why: str) -> PermanentProviderError:
    return PermanentProviderError(
        f"Klaviyo {what} cannot be written in Klaviyo's template syntax: {why}",
        code="template",
    )


# --- finding a campaign by name ------------------------------------------------------------


def find_query(channel: str, name: str) -> dict[str, str]:
    """The campaigns of the channel whose name contains the longest run of `name` free of
    quotes and backslashes: Klaviyo documents no escape inside a filter's string, so none
    is relied on (the exact name is matched in the answer, `named`)."""
    clause = f"equals(messages.channel,'{channel}')"
    fragment = name_fragment(name)
    if fragment:
        clause = f"and({clause},contains(name,{filter_string(fragment)}))"
    return {"filter": clause}


def name_fragment(name: str) -> str:
    runs = name.replace("\\", '"').replace("'", '"').split('"')
    return max(runs, key=len)


def named(document: Any, name: str) -> list[Campaign]:
    """The campaigns of a get_campaigns page named exactly `name`. ValueError for an
    answer that is not a JSON:API collection."""
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise ValueError("the answer has no data array")
    return [campaign(resource) for resource in data if _name_of(resource) == name]


def _name_of(resource: Any) -> object:
    attributes = resource.get("attributes") if isinstance(resource, dict) else None
    return attributes.get("name") if isinstance(attributes, dict) else None


def chosen(campaigns: Sequence[Campaign]) -> Campaign | None:
    """The campaign to complete of those named alike (two only when a create's answer was
    lost and the next look missed it): one already past Draft, so that a second is never
    sent too; else the oldest."""
    ordered = sorted(campaigns, key=lambda each: (each.draft, each.created_at, each.id))
    return ordered[0] if ordered else None


def campaign(resource: Any) -> Campaign:
    """A campaign resource read; ValueError when it has no id or status."""
    attributes = resource.get("attributes") if isinstance(resource, dict) else None
    identifier = resource.get("id") if isinstance(resource, dict) else None
    if not isinstance(identifier, str) or not identifier or not isinstance(attributes, dict):
        raise ValueError("a campaign resource has an id and attributes")
    status = attributes.get("status")
    if not isinstance(status, str):
        raise ValueError("a campaign resource has a status")
    return Campaign(
        id=identifier,
        name=str(attributes.get("name") or ""),
        status=status,
        created_at=str(attributes.get("created_at") or ""),
        message_ids=_message_ids(resource.get("relationships")),
    )


def campaign_document(document: Any) -> Campaign:
    """`data` of create_campaign's or get_campaign's answer; ValueError when not one."""
    data = document.get("data") if isinstance(document, dict) else None
    return campaign(data)


def _message_ids(relationships: Any) -> tuple[str, ...]:
    messages = relationships.get("campaign-messages") if isinstance(relationships, dict) else None
    data = messages.get("data") if isinstance(messages, dict) else None
    if not isinstance(data, list):
        return ()
    return tuple(str(each["id"]) for each in data if isinstance(each, dict) and each.get("id"))


def campaign_path(campaign_id: str) -> str:
    return f"{CAMPAIGNS}/{quote(campaign_id, safe='')}"


# --- the bodies of a send ------------------------------------------------------------------


def create_body(send: CampaignSend, texts: Content) -> JsonObject:
    """POST /api/campaigns: the campaign for the send's list, with its one message."""
    attributes: JsonObject = {
        "name": send.name,
        "audiences": {"included": [send.list_id]},
        "send_strategy": send_strategy(send),
        "campaign-messages": {
            "data": [
                {
                    "type": "campaign-message",
                    "attributes": {"definition": message_definition(send, texts)},
                }
            ]
        },
    }
    return {"data": {"type": "campaign", "attributes": attributes}}


def send_strategy(send: CampaignSend) -> JsonObject:
    """At `send_at` in UTC (not the recipients' local time), else at once."""
    if send.send_at is None:
        return {"method": "immediate"}
    return {
        "method": "static",
        "datetime": iso_time(send.send_at),
        "options": {"is_local": False},
    }


def message_definition(send: CampaignSend, texts: Content) -> JsonObject:
    """The message's definition for its channel. An email's body is not here: it goes as
    the HTML of a template assigned to the message (`template_body`)."""
    if texts.channel == "email":
        return {
            "channel": "email",
            "label": send.name,
            "content": {
                "subject": texts.subject,
                "from_email": send.from_email,
                "from_label": send.from_label,
                "reply_to_email": send.reply_to,
            },
        }
    if texts.channel == "sms":
        return {"channel": "sms", "content": {"body": texts.body}}
    return {"channel": texts.channel, "content": {"title": texts.subject, "body": texts.body}}


def template_body(name: str, html: str) -> JsonObject:
    """POST /api/templates: the email's HTML as a code template, named as its campaign."""
    attributes = {"name": name, "editor_type": "CODE", "html": html}
    return {"data": {"type": "template", "attributes": attributes}}


def template_id(document: Any) -> str:
    """`data.id` of create_template's answer; ValueError when it has none."""
    data = document.get("data") if isinstance(document, dict) else None
    identifier = data.get("id") if isinstance(data, dict) else None
    if not isinstance(identifier, str) or not identifier:
        raise ValueError("the answer has no data.id")
    return identifier


def template_path(template_id: str) -> str:
    return f"{TEMPLATES}/{quote(template_id, safe='')}"


def assign_body(message_id: str, template_id: str) -> JsonObject:
    """POST /api/campaign-message-assign-template: the template's HTML copied into the
    message."""
    template = {"data": {"type": "template", "id": template_id}}
    return {
        "data": {
            "type": "campaign-message",
            "id": message_id,
            "relationships": {"template": template},
        }
    }


def send_job_body(campaign_id: str) -> JsonObject:
    return {"data": {"type": "campaign-send-job", "id": campaign_id}}
