"""Klaviyo-style JSON:API error documents."""

from __future__ import annotations

import json
import uuid
from typing import Any

JSON_API = "application/vnd.api+json"
TITLES = {
    400: ("invalid", "Invalid input."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    409: ("conflict", "Conflict."),
    411: ("length_required", "Length required."),
    413: ("request_too_large", "Request entity too large."),
    415: ("unsupported_media_type", "Unsupported media type."),
    422: ("unprocessable_entity", "Unprocessable entity."),
    429: ("throttled", "Request was throttled."),
    500: ("error", "A server error occurred."),
    503: ("service_unavailable", "Service temporarily unavailable."),
}


def error_document(
    status: int,
    *,
    code: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    pointer: str | None = None,
    parameter: str | None = None,
) -> bytes:
    default_code, default_title = TITLES.get(status, ("error", "Error."))
    error: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "status": status,
        "code": code or default_code,
        "title": title or default_title,
        "detail": detail or title or default_title,
        "links": {},
        "meta": {},
    }
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    elif parameter is not None:
        error["source"] = {"parameter": parameter}
    return json.dumps({"errors": [error]}).encode()


def throttled_document(retry_after: int) -> bytes:
    """Klaviyo's 429 body, exactly: no links or meta, an empty source."""
    error = {
        "id": str(uuid.uuid4()),
        "status": 429,
        "code": "throttled",
        "title": "Request was throttled.",
        "detail": f"Request was throttled. Expected available in {retry_after} seconds.",
        "source": {},
    }
    return json.dumps({"errors": [error]}).encode()


def gateway_page(status: int) -> bytes:
    """What a CDN in front of an API sends on 502/504/524: HTML, not JSON."""
    return (
        f"<html><head><title>{status} Gateway Error</title></head>"
        f"<body><h1>{status} Gateway Error</h1></body></html>"
    ).encode()
