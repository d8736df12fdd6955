"""The template and campaign endpoints (campaigns.py runs the campaigns, templates.py keeps the
templates), with Klaviyo's limits (rates.py: templates 75/s 750/m, campaigns 10/s 150/m):

    POST   /api/templates          201 + the template: {"data": {"type": "template",
                                   "attributes": {name, editor_type: CODE | USER_DRAGGABLE |
                                   SYSTEM_DRAGGABLE, html (required for CODE), text?}}};
                                   400 past 1,000 templates in the account
    DELETE /api/templates/{id}     204; 404 when unknown
    POST   /api/campaigns          201 + the campaign (Draft): name, audiences.included (known
                                   lists), excluded?, send_strategy? (immediate, or static
                                   with an ISO 8601 datetime), campaign-messages.data: one
                                   message whose definition's channel is email (content:
                                   subject, from_email, from_label, preview_text?), sms
                                   (content.body) or mobile_push (content: title, body)
    GET    /api/campaigns/{id}     the campaign; 404 when unknown (GET /api/campaigns lists
                                   them with the planted ones: catalogue_routes.py)
    POST   /api/campaign-message-assign-template   200 + the campaign message, the template's
                                   html and text copied into it; 404 for an unknown message
                                   or template; 400 for a message not email, or a campaign
                                   no longer a Draft
    POST   /api/campaign-send-jobs 202 {"data": {"type": "campaign-send-job", "id": <campaign
                                   id>, "attributes": {"status": "queued"}}}; 400 when the
                                   campaign is not a Draft (a second send job) or its email
                                   has no template; 404 when unknown
    GET    /api/campaign-send-jobs/{id}   the job: queued, processing, complete; 404 when the
                                   campaign has none

Body errors are 400 with the pointer at what is wrong. ASSUMED (the sandbox's own limits):
send strategies other than immediate and static are refused, and so is a static one with
`options.is_local` true (the sandbox sends at one UTC time).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from dispatcher.sandbox.klaviyo.campaigns import (
    ASSIGN_TEMPLATE,
    CAMPAIGNS,
    CHANNELS,
    EMAIL,
    JOB_STATUS,
    PUSH,
    SEND_JOBS,
    CampaignRefused,
    NewCampaign,
    campaign_resource,
    message_resource,
)
from dispatcher.sandbox.klaviyo.reads import Query, Reader, ReadError
from dispatcher.sandbox.klaviyo.state import SandboxState
from dispatcher.sandbox.klaviyo.templates import (
    EDITOR_TYPES,
    MAX_TEMPLATES,
    TEMPLATES,
    TemplateLimitReached,
)
from dispatcher.sandbox.klaviyo.validation import Invalid, _obj, _str

MAX_NAME = 255
MAX_CONTENT = 1_000_000
_ATTRIBUTES = "/data/attributes"
_DEFINITION = f"{_ATTRIBUTES}/campaign-messages/data/0/attributes/definition"
_REQUIRED_CONTENT = {
    EMAIL: ("subject", "from_email", "from_label"),
    "sms": ("body",),
    PUSH: ("title", "body"),
}
_OPTIONAL_CONTENT = {EMAIL: ("preview_text", "reply_to_email", "cc_email", "bcc_email")}
Writer = Callable[[SandboxState, dict[str, str], Any, str, str], tuple[int, bytes]]
Remover = Callable[[SandboxState, dict[str, str]], None]


def _answer(status: int, resource: dict[str, Any]) -> tuple[int, bytes]:
    return status, json.dumps({"data": resource, "links": resource.get("links", {})}).encode()


def _data(document: Any, type_: str) -> dict[str, Any]:
    data = _obj(_obj(document, "").get("data"), "/data")
    if data.get("type") != type_:
        raise Invalid("/data/type", f"must be {type_!r}")
    return data


# templates


def _create_template(
    state: SandboxState, params: dict[str, str], document: Any, at: str, base: str
) -> tuple[int, bytes]:
    attributes = _obj(_data(document, "template").get("attributes"), _ATTRIBUTES)
    name = _str(attributes.get("name"), f"{_ATTRIBUTES}/name", max_len=MAX_NAME)
    editor_type = attributes.get("editor_type")
    if editor_type not in EDITOR_TYPES:
        raise Invalid(f"{_ATTRIBUTES}/editor_type", f"must be one of {list(EDITOR_TYPES)}")
    html = _optional_text(attributes, "html", required=editor_type == "CODE")
    text = _optional_text(attributes, "text", required=False)
    try:
        record = state.templates.create(name, editor_type, html, text, at)
    except TemplateLimitReached:
        detail = f"The account holds {MAX_TEMPLATES} templates, the most it may; delete some."
        raise Invalid(_ATTRIBUTES, detail) from None
    return _answer(201, record.resource(base))


def _optional_text(attributes: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = attributes.get(name)
    if value is None and not required:
        return None
    pointer = f"{_ATTRIBUTES}/{name}"
    if not isinstance(value, str) or (required and not value):
        raise Invalid(pointer, "is required" if required else "must be a string")
    if len(value) > MAX_CONTENT:
        raise Invalid(pointer, f"at most {MAX_CONTENT} characters")
    return value


def _delete_template(state: SandboxState, params: dict[str, str]) -> None:
    if not state.templates.delete(params["id"]):
        raise ReadError(404, f"A template with id {params['id']} does not exist.")


# campaigns


def parse_campaign(state: SandboxState, document: Any) -> NewCampaign:
    """A POST /api/campaigns body, checked (Invalid names the pointer)."""
    attributes = _obj(_data(document, "campaign").get("attributes"), _ATTRIBUTES)
    name = _str(attributes.get("name"), f"{_ATTRIBUTES}/name", max_len=MAX_NAME)
    audiences = _obj(attributes.get("audiences"), f"{_ATTRIBUTES}/audiences")
    included = _list_ids(state, audiences.get("included"), "included", required=True)
    excluded = _list_ids(state, audiences.get("excluded"), "excluded", required=False)
    strategy = _send_strategy(attributes.get("send_strategy"))
    definition = _definition(attributes.get("campaign-messages"))
    return NewCampaign(name, included, excluded, strategy, definition)


def _list_ids(state: SandboxState, value: Any, name: str, *, required: bool) -> list[str]:
    pointer = f"{_ATTRIBUTES}/audiences/{name}"
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise Invalid(pointer, "must be a non-empty array of list ids")
    for index, list_id in enumerate(value):
        if not isinstance(list_id, str) or state.lists.get(list_id) is None:
            raise Invalid(f"{pointer}/{index}", f"The list {list_id!r} does not exist.")
    return list(dict.fromkeys(value))


def _send_strategy(value: Any) -> dict[str, Any]:
    pointer = f"{_ATTRIBUTES}/send_strategy"
    if value is None:
        return {"method": "immediate"}
    strategy = _obj(value, pointer)
    method = strategy.get("method")
    if method == "immediate":
        return {"method": "immediate"}
    if method != "static":
        raise Invalid(f"{pointer}/method", "the sandbox sends 'immediate' or 'static' only")
    options = strategy.get("options") or {}
    if not isinstance(options, dict) or options.get("is_local", False) is not False:
        raise Invalid(f"{pointer}/options/is_local", "the sandbox sends at one UTC time only")
    moment = _datetime(strategy.get("datetime"), f"{pointer}/datetime")
    return {
        "method": "static",
        "datetime": moment.isoformat(),
        "options": {"is_local": False},
        "datetime_s": moment.timestamp(),
    }


def _datetime(value: Any, pointer: str) -> datetime:
    if not isinstance(value, str):
        raise Invalid(pointer, "must be an ISO 8601 datetime")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(pointer, "must be an ISO 8601 datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _definition(value: Any) -> dict[str, Any]:
    """The one message's definition: its channel's content, checked."""
    pointer = f"{_ATTRIBUTES}/campaign-messages"
    messages = _obj(value, pointer).get("data")
    if not isinstance(messages, list) or len(messages) != 1:
        raise Invalid(f"{pointer}/data", "must hold exactly one campaign message")
    message = _obj(messages[0], f"{pointer}/data/0")
    if message.get("type") != "campaign-message":
        raise Invalid(f"{pointer}/data/0/type", "must be 'campaign-message'")
    attributes = _obj(message.get("attributes"), f"{pointer}/data/0/attributes")
    definition = _obj(attributes.get("definition"), _DEFINITION)
    channel = definition.get("channel")
    if channel not in CHANNELS:
        raise Invalid(f"{_DEFINITION}/channel", f"must be one of {list(CHANNELS)}")
    content = _obj(definition.get("content"), f"{_DEFINITION}/content")
    for name in _REQUIRED_CONTENT[channel]:
        _str(content.get(name), f"{_DEFINITION}/content/{name}", max_len=MAX_CONTENT)
    for name in _OPTIONAL_CONTENT.get(channel, ()):
        if content.get(name) is not None and not isinstance(content[name], str):
            raise Invalid(f"{_DEFINITION}/content/{name}", "must be a string")
    label = definition.get("label")
    if label is not None and not isinstance(label, str):
        raise Invalid(f"{_DEFINITION}/label", "must be a string")
    return dict(definition)


def _create_campaign(
    state: SandboxState, params: dict[str, str], document: Any, at: str, base: str
) -> tuple[int, bytes]:
    now = state.clock()
    record = state.campaigns.create(parse_campaign(state, document), now)
    return _answer(201, campaign_resource(record, base))


def _one_campaign(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    record = state.campaigns.get(params["id"])
    if record is None:
        raise ReadError(404, f"A campaign with id {params['id']} does not exist.")
    resource = campaign_resource(record, base)
    return {"data": resource, "links": resource["links"]}


def _assign_template(
    state: SandboxState, params: dict[str, str], document: Any, at: str, base: str
) -> tuple[int, bytes]:
    data = _data(document, "campaign-message")
    message_id = _str(data.get("id"), "/data/id", max_len=64)
    relationships = _obj(data.get("relationships"), "/data/relationships")
    relationship = _obj(relationships.get("template"), "/data/relationships/template")
    pointer = "/data/relationships/template/data"
    target = _obj(relationship.get("data"), pointer)
    if target.get("type") != "template":
        raise Invalid(f"{pointer}/type", "must be 'template'")
    template_id = _str(target.get("id"), f"{pointer}/id", max_len=64)
    if state.campaigns.of_message(message_id) is None:
        raise ReadError(404, f"A campaign message with id {message_id} does not exist.")
    template = state.templates.get(template_id)
    if template is None:
        raise ReadError(404, f"A template with id {template_id} does not exist.")
    try:
        record = state.campaigns.assign(
            message_id, template.id, template.html, template.text, state.clock()
        )
    except CampaignRefused as exc:
        raise Invalid("/data/id", str(exc)) from None
    return _answer(200, message_resource(record, base))


def _send_job(
    state: SandboxState, params: dict[str, str], document: Any, at: str, base: str
) -> tuple[int, bytes]:
    campaign_id = _str(_data(document, "campaign-send-job").get("id"), "/data/id", max_len=64)
    try:
        state.campaigns.start_send(campaign_id, state.clock())
    except KeyError:
        raise ReadError(404, f"A campaign with id {campaign_id} does not exist.") from None
    except CampaignRefused as exc:
        raise Invalid("/data/id", str(exc)) from None
    return _answer(202, _job_resource(campaign_id, "queued", base))


def _one_send_job(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    record = state.campaigns.get(params["id"])
    status = None if record is None else JOB_STATUS.get(record.status)
    if status is None:
        raise ReadError(404, f"A campaign send job with id {params['id']} does not exist.")
    resource = _job_resource(params["id"], status, base)
    return {"data": resource, "links": resource["links"]}


def _job_resource(campaign_id: str, status: str, base: str) -> dict[str, Any]:
    return {
        "type": "campaign-send-job",
        "id": campaign_id,
        "attributes": {"status": status},
        "links": {"self": f"{base}{SEND_JOBS}/{campaign_id}/"},
    }


READERS: dict[str, Reader] = {
    f"GET {CAMPAIGNS}/{{id}}": _one_campaign,
    f"GET {SEND_JOBS}/{{id}}": _one_send_job,
}
WRITERS: dict[str, Writer] = {
    f"POST {TEMPLATES}": _create_template,
    f"POST {CAMPAIGNS}": _create_campaign,
    f"POST {ASSIGN_TEMPLATE}": _assign_template,
    f"POST {SEND_JOBS}": _send_job,
}
REMOVERS: dict[str, Remover] = {f"DELETE {TEMPLATES}/{{id}}": _delete_template}
