"""The webhook endpoints (shared/PROVIDERS-API.md, Klaviyo "Webhooks"; the body and its checks:
webhook_book.py), each 1/s and 15/m (rates.py):

    POST   /api/webhooks               201 + the webhook (400 naming the pointer)
    GET    /api/webhooks               every webhook of the account
    GET    /api/webhooks/{id}          the webhook; 404 when unknown
    DELETE /api/webhooks/{id}          204; 404 when unknown
    GET    /api/webhook-topics         the topics the sandbox sends (TOPICS), ids only
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dispatcher.sandbox.klaviyo.reads import Query, Reader, ReadError
from dispatcher.sandbox.klaviyo.state import SandboxState
from dispatcher.sandbox.klaviyo.webhook_book import (
    TOPICS,
    WEBHOOK_TOPICS,
    WEBHOOKS,
    WebhookRecord,
    parse_create,
)

# (state, path parameters) -> nothing: a DELETE of one resource, answered 204
Remover = Callable[[SandboxState, dict[str, str]], None]


def _create(
    state: SandboxState, params: dict[str, str], document: Any, at: str, base: str
) -> tuple[int, bytes]:
    resource = state.webhooks.create(parse_create(document), at).resource(base)
    return 201, json.dumps({"data": resource, "links": resource["links"]}).encode()


def _list(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    data = [record.resource(base) for record in state.webhooks.book.all()]
    return {"data": data, "links": {"self": f"{base}{WEBHOOKS}/"}}


def _one(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    resource = _known(state, params["id"]).resource(base)
    return {"data": resource, "links": resource["links"]}


def _delete(state: SandboxState, params: dict[str, str]) -> None:
    if not state.webhooks.book.delete(params["id"]):
        raise _unknown(params["id"])


def _topics(state: SandboxState, params: dict[str, str], query: Query, base: str) -> Any:
    data = [
        {"type": "webhook-topic", "id": t, "links": {"self": f"{base}{WEBHOOK_TOPICS}/{t}/"}}
        for t in TOPICS
    ]
    return {"data": data, "links": {"self": f"{base}{WEBHOOK_TOPICS}/"}}


def _known(state: SandboxState, webhook_id: str) -> WebhookRecord:
    record = state.webhooks.book.get(webhook_id)
    if record is None:
        raise _unknown(webhook_id)
    return record


def _unknown(webhook_id: str) -> ReadError:
    return ReadError(404, f"A webhook with id {webhook_id} does not exist.")


READERS: dict[str, Reader] = {
    f"GET {WEBHOOKS}": _list,
    f"GET {WEBHOOKS}/{{id}}": _one,
    f"GET {WEBHOOK_TOPICS}": _topics,
}
WRITERS = {f"POST {WEBHOOKS}": _create}
REMOVERS: dict[str, Remover] = {f"DELETE {WEBHOOKS}/{{id}}": _delete}
