"""The Klaviyo sandbox's HTTP side: its request handler on the shared server plumbing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from dispatcher.sandbox.common.faults import parse_items
from dispatcher.sandbox.common.http import SandboxHandler, SandboxHTTPServer
from dispatcher.sandbox.jsonapi import error_document, gateway_page
from dispatcher.sandbox.state import RECORDED_HEADERS, Fault, SandboxState, Throttle, now_iso
from dispatcher.sandbox.validation import ROUTES, Invalid, Route, profile_key

T = TypeVar("T")

JSON_API = "application/vnd.api+json"
ACCEPTED_CONTENT_TYPES = (JSON_API, "application/json")
CONTROL_PREFIX = "/_sandbox/"
CONTROL_MAX_BYTES = 1024 * 1024
_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?$")
_GATEWAY_STATUSES = (502, 504, 524)


class _Reject(Exception):
    """An error answer; raised by checks, sent and counted by the handler."""

    def __init__(self, status: int, **fields: str | None) -> None:
        super().__init__(status)
        self.status = status
        self.fields = fields


class SandboxServer(SandboxHTTPServer):
    def __init__(self, host: str, port: int, state: SandboxState, api_key: str | None) -> None:
        self.state = state
        self.api_key = api_key
        super().__init__(host, port, _Handler)


class _Handler(SandboxHandler):
    server_version = "KlaviyoSandbox/1.0"
    content_type = JSON_API
    server: SandboxServer

    def error_body(self, status: int, detail: str) -> bytes:
        return error_document(status, detail=detail)

    def handle_request(self) -> None:
        received_at = now_iso()
        url = urlsplit(self.path)
        route = ROUTES.get(url.path)
        body = self.read_body(route.max_bytes if route else CONTROL_MAX_BYTES)
        if body is None:
            return
        if url.path.startswith(CONTROL_PREFIX):
            _control(self, url.path, parse_qs(url.query), body)
        else:
            self._api(url.path, route, body, received_at)

    def _api(self, path: str, route: Route | None, body: bytes, received_at: str) -> None:
        fault = self.server.state.take_fault(path)
        if fault is not None and fault.latency_ms and self.sleep_interrupted(fault.latency_ms):
            return
        if fault is None or fault.status is None:
            retry_after = self.server.state.throttled(path)
            if retry_after is not None:
                fault = Fault(status=429, retry_after=retry_after)
        try:
            if fault is not None and fault.status is not None:
                raise _fault_reject(fault)
            route = self._check(path, route)
            document = _parse(body)
            unique_ids = route.validate(document)
        except Invalid as exc:
            self._reject(path, _Reject(400, detail=exc.detail, pointer=exc.pointer), received_at)
        except _Reject as exc:
            self._reject(path, exc, received_at)
        else:
            self._accept(route, document, body, unique_ids, received_at)

    def _check(self, path: str, route: Route | None) -> Route:
        if route is None:
            raise _Reject(404, detail=f"No such endpoint: {path}")
        if self.command != "POST":
            raise _Reject(405, detail=f'Method "{self.command}" not allowed.', allow="POST")
        scheme, _, key = self.headers.get("Authorization", "").partition(" ")
        if scheme != "Klaviyo-API-Key" or not key.strip():
            raise _Reject(401)
        if self.server.api_key is not None and key.strip() != self.server.api_key:
            raise _Reject(401, title="Incorrect authentication credentials.")
        revision = self.headers.get("revision", "")
        if not _REVISION.match(revision):
            detail = "A valid revision header (YYYY-MM-DD) is required."
            raise _Reject(400, detail=detail, parameter="revision")
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise _Reject(415, detail=f'Unsupported media type "{content_type}" in request.')
        return route

    def _reject(self, path: str, reject: _Reject, received_at: str) -> None:
        fields = dict(reject.fields)
        retry_after, allow = fields.pop("retry_after", None), fields.pop("allow", None)
        headers = {"Retry-After": retry_after, "Allow": allow}
        if reject.status in _GATEWAY_STATUSES:
            reply, content_type = gateway_page(reject.status), "text/html"
        else:
            reply, content_type = error_document(reject.status, **fields), JSON_API
        code = fields.get("code") or ("" if content_type == "text/html" else _code_of(reply))
        self.server.state.reject(self.command, path, reject.status, code, received_at)
        self.send(reject.status, reply, content_type=content_type, headers=headers)

    def _accept(
        self, route: Route, document: Any, body: bytes, unique_ids: list[str], received_at: str
    ) -> None:
        state = self.server.state
        status, reply = route.success, b""
        if route.path == "/api/profile-import":
            profile_id, created = state.import_profile(profile_key(document))
            status = 201 if created else 200
            reply = _profile_reply(profile_id, document["data"]["attributes"])
        state.consent.apply(route.path, document, received_at)
        headers = {h: self.headers[h] for h in RECORDED_HEADERS if h in self.headers}
        state.record(self.command, route.path, headers, body, unique_ids, received_at)
        self.send(status, reply)


def _fault_reject(fault: Fault) -> _Reject:
    status = fault.status or 500
    retry_after = fault.retry_after
    if retry_after is None and status == 429:
        retry_after = 1
    detail = fault.detail
    if detail is None and status == 429:
        detail = f"Request was throttled. Expected available in {retry_after} second(s)."
    return _Reject(
        status,
        code=fault.code,
        detail=detail,
        pointer=fault.pointer,
        retry_after=None if retry_after is None else str(retry_after),
    )


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise _Reject(400, code="parse_error", title="Parse error.", detail=str(exc)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _code_of(reply: bytes) -> str:
    code: str = json.loads(reply)["errors"][0]["code"]
    return code


def _profile_reply(profile_id: str, attributes: dict[str, Any]) -> bytes:
    data = {
        "type": "profile",
        "id": profile_id,
        "attributes": attributes,
        "links": {"self": f"https://a.klaviyo.com/api/profiles/{profile_id}/"},
    }
    return json.dumps({"data": data}).encode()


def _json(handler: _Handler, status: int, value: Any) -> None:
    handler.send(status, json.dumps(value).encode(), content_type="application/json")


def _control(handler: _Handler, path: str, query: dict[str, list[str]], body: bytes) -> None:
    """The /_sandbox/ endpoints (no authentication, never faulted, never recorded)."""
    state = handler.server.state
    match handler.command, path.rstrip("/"):
        case "GET", "/_sandbox/requests":
            filtered = query.get("path", [None])[0]
            handler.send(200, state.requests_json(filtered), content_type="application/json")
        case "DELETE", "/_sandbox/requests":
            state.reset()
            handler.send(204)
        case "GET", "/_sandbox/events":
            _json(handler, 200, state.event_counts())
        case "GET", "/_sandbox/profiles":
            _json(handler, 200, state.consent.view(query.get("email", [None])[0]))
        case "GET", "/_sandbox/rejections":
            _json(handler, 200, state.rejections())
        case "GET", "/_sandbox/faults":
            _json(handler, 200, state.faults())
        case "POST", "/_sandbox/faults":
            _add_faults(handler, body)
        case "DELETE", "/_sandbox/faults":
            state.clear_faults()
            handler.send(204)
        case "GET", "/_sandbox/throttles":
            _json(handler, 200, state.throttles())
        case "POST", "/_sandbox/throttles":
            _add_throttles(handler, body)
        case "GET", "/_sandbox/health":
            _json(handler, 200, {"status": "ok"})
        case _:
            handler.send(404, error_document(404, detail=f"No such control endpoint: {path}"))


def _add_faults(handler: _Handler, body: bytes) -> None:
    """POST /_sandbox/faults takes one fault object or a list of them (queued in order)."""
    faults = _control_items(handler, body, Fault.from_json, "fault")
    if faults is not None:
        for fault in faults:
            handler.server.state.add_fault(fault)
        _json(handler, 201, handler.server.state.faults())


def _add_throttles(handler: _Handler, body: bytes) -> None:
    """POST /_sandbox/throttles takes one throttle object or a list of them."""
    throttles = _control_items(handler, body, Throttle.from_json, "throttle")
    if throttles is not None:
        for throttle in throttles:
            handler.server.state.add_throttle(throttle)
        _json(handler, 201, handler.server.state.throttles())


def _control_items(
    handler: _Handler, body: bytes, parse: Callable[[Any], T], what: str
) -> list[T] | None:
    """One JSON object or a list of them, each parsed; None (answered 400) if any is bad."""
    try:
        return parse_items(body, parse)
    except (ValueError, TypeError) as exc:
        handler.send(400, error_document(400, detail=f"Invalid {what}: {exc}"))
        return None
