"""The Klaviyo sandbox's HTTP side: its request handler on the shared server (common/http.py)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from dispatcher.sandbox.common.faults import Fault
from dispatcher.sandbox.common.http import SandboxHandler, SandboxHTTPServer
from dispatcher.sandbox.common.recording import Arrival
from dispatcher.sandbox.common.windows import Refusal
from dispatcher.sandbox.klaviyo import (
    campaign_routes,
    catalogue_routes,
    push_routes,
    webhook_routes,
)
from dispatcher.sandbox.klaviyo.control import control
from dispatcher.sandbox.klaviyo.endpoints import (
    ERASURE_JOBS,
    IMPORT_JOBS,
    Endpoint,
    NoEndpoint,
    resolve,
)
from dispatcher.sandbox.klaviyo.flows import event_profiles
from dispatcher.sandbox.klaviyo.jsonapi import (
    JSON_API,
    error_document,
    gateway_page,
    throttled_document,
)
from dispatcher.sandbox.klaviyo.list_routes import READERS as LIST_READERS
from dispatcher.sandbox.klaviyo.list_routes import WRITERS as LIST_WRITERS
from dispatcher.sandbox.klaviyo.reads import READERS, ReadError
from dispatcher.sandbox.klaviyo.state import RECORDED_HEADERS, SandboxState
from dispatcher.sandbox.klaviyo.validation import ROUTES, Invalid, Route

ACCEPTED_CONTENT_TYPES = (JSON_API, "application/json")
CONTROL_PREFIX = "/_sandbox/"
CONTROL_MAX_BYTES = 1024 * 1024
_REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z0-9]+)?$")
_GATEWAY_STATUSES = (502, 504, 524)
_READERS = {
    **READERS,
    **LIST_READERS,
    **webhook_routes.READERS,
    **catalogue_routes.READERS,
    **push_routes.READERS,
    **campaign_routes.READERS,
}
WRITERS = {
    **LIST_WRITERS,
    **webhook_routes.WRITERS,
    **catalogue_routes.WRITERS,
    **push_routes.WRITERS,
    **campaign_routes.WRITERS,
}
REMOVERS = {**webhook_routes.REMOVERS, **push_routes.REMOVERS, **campaign_routes.REMOVERS}


class _Reject(Exception):
    """An error answer; raised by checks, sent and counted by the handler."""

    def __init__(self, status: int, *, document: bytes | None = None, **fields: str | None) -> None:
        super().__init__(status)
        self.status = status
        self.document = document  # the whole body, when it is not built from `fields`
        self.fields = fields


def _throttled(retry_after: int) -> _Reject:
    """Klaviyo's 429: its exact body, Retry-After in whole seconds, no RateLimit-* headers."""
    document = throttled_document(retry_after)
    return _Reject(429, document=document, code="throttled", retry_after=str(retry_after))


class SandboxServer(SandboxHTTPServer):
    def __init__(self, host: str, port: int, state: SandboxState, api_key: str | None) -> None:
        self.state = state
        self.api_key = api_key
        super().__init__(host, port, _Handler)


class _Handler(SandboxHandler):
    server_version = "KlaviyoSandbox/1.0"
    content_type = JSON_API
    server: SandboxServer
    rate_headers: dict[str, str]  # RateLimit-* of the call being answered

    def error_body(self, status: int, detail: str) -> bytes:
        return error_document(status, detail=detail)

    def handle_request(self) -> None:
        self.rate_headers = {}
        state = self.server.state
        # Its arrival, before the body is read and before the sandbox's own work below
        # (applying a finished import job of 10,000 profiles takes a busy machine a good
        # part of a second): Klaviyo counts a request against its limits when it comes.
        received_s = self.arrived(state.clock)
        url = urlsplit(self.path)
        route = ROUTES.get(url.path.rstrip("/")) if self.command == "POST" else None
        body = self.read_body(route.max_bytes if route else CONTROL_MAX_BYTES)
        if body is None:
            return
        state.send_due()  # what fell due goes out before anything changes
        if url.path.startswith(CONTROL_PREFIX):
            control(self, url.path, parse_qs(url.query), body)
            return
        state.settle()
        try:
            resolved: tuple[Endpoint, dict[str, str]] | NoEndpoint = resolve(self.command, url.path)
        except NoEndpoint as exc:
            resolved = exc
        name = None if isinstance(resolved, NoEndpoint) else resolved[0].name
        arrival = Arrival(self.command, url.path, url.query, name, received_s)
        self._api(arrival, resolved, body)

    def _api(
        self,
        arrival: Arrival,
        resolved: tuple[Endpoint, dict[str, str]] | NoEndpoint,
        body: bytes,
    ) -> None:
        state = self.server.state
        fault = state.faults.take(arrival.path)
        if fault is not None and fault.latency_ms and self.sleep_interrupted(fault.latency_ms):
            return
        try:
            if fault is not None and fault.status is not None:
                raise _fault_reject(fault)
            refusal = state.throttle_refusal(arrival.path)
            if refusal is not None:
                raise self._throttled(arrival, refusal)
            endpoint, params = self._check(arrival, resolved)
            if endpoint.method == "GET":
                self._read(arrival, endpoint, params)
                return
            remover = REMOVERS.get(endpoint.name)
            if remover is not None:  # a DELETE of one resource: no body
                remover(state, params)
                self._record(arrival, b"", [])
                self.send(204)
                return
            self._check_content_type()
            document = _parse(body)
            writer = WRITERS.get(endpoint.name)
            if writer is not None:  # lists, webhooks: checked, applied and answered there
                status, reply = writer(state, params, document, arrival.received_at, self.base_url)
                self._record(arrival, body, [])
                self.send(status, reply)
                return
            route = ROUTES[endpoint.template]
            unique_ids = route.validate(document)
        except Invalid as exc:
            self._reject(arrival, _Reject(400, detail=exc.detail, pointer=exc.pointer))
        except ReadError as exc:
            reject = _Reject(exc.status, detail=exc.detail, parameter=exc.parameter)
            self._reject(arrival, reject)
        except _Reject as exc:
            self._reject(arrival, exc)
        else:
            self._accept(arrival, route, document, body, unique_ids)

    def _check(
        self, arrival: Arrival, resolved: tuple[Endpoint, dict[str, str]] | NoEndpoint
    ) -> tuple[Endpoint, dict[str, str]]:
        """Klaviyo's checks before the body: endpoint, method, key, rate limit, revision."""
        path = arrival.path
        if isinstance(resolved, NoEndpoint):
            if not resolved.allow:
                raise _Reject(404, detail=f"No such endpoint: {path}")
            allow = ", ".join(resolved.allow)
            raise _Reject(405, detail=f'Method "{self.command}" not allowed.', allow=allow)
        scheme, _, key = self.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme != "Klaviyo-API-Key" or not key:
            raise _Reject(401)
        if self.server.api_key is not None and key != self.server.api_key:
            raise _Reject(401, title="Incorrect authentication credentials.")
        decision = self.server.state.limiter.admit(key, resolved[0].name, arrival.received_s)
        if isinstance(decision, Refusal):
            raise self._throttled(arrival, decision)
        if decision is not None:
            self.rate_headers = decision.headers()
        revision = self.headers.get("revision", "")
        if not _REVISION.match(revision):
            detail = "A valid revision header (YYYY-MM-DD) is required."
            raise _Reject(400, detail=detail, parameter="revision")
        return resolved

    def _throttled(self, arrival: Arrival, refusal: Refusal) -> _Reject:
        """A rate-limit refusal, counted in GET /_sandbox/throttled."""
        self.server.state.refusals.add(arrival, refusal, 429)
        return _throttled(refusal.retry_after)

    def _check_content_type(self) -> None:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise _Reject(415, detail=f'Unsupported media type "{content_type}" in request.')

    @property
    def base_url(self) -> str:
        """Where links in answers point: this sandbox, as the client addressed it."""
        host = self.headers.get("Host") or f"{self.server.server_name}:{self.server.server_port}"
        return f"http://{host}"

    def _reject(self, arrival: Arrival, reject: _Reject) -> None:
        fields = dict(reject.fields)
        retry_after, allow = fields.pop("retry_after", None), fields.pop("allow", None)
        headers = {"Retry-After": retry_after, "Allow": allow}
        if reject.document is not None:
            reply, content_type = reject.document, JSON_API
        elif reject.status in _GATEWAY_STATUSES:
            reply, content_type = gateway_page(reject.status), "text/html"
        else:
            reply, content_type = error_document(reject.status, **fields), JSON_API
        code = fields.get("code") or ("" if content_type == "text/html" else _code_of(reply))
        self.server.state.log.reject(arrival, reject.status, code=code)
        self.send(reject.status, reply, content_type=content_type, headers=headers)

    def _read(self, arrival: Arrival, endpoint: Endpoint, params: dict[str, str]) -> None:
        query = parse_qs(arrival.query, keep_blank_values=True)
        document = _READERS[endpoint.name](self.server.state, params, query, self.base_url)
        self._record(arrival, b"", [])
        self.send(200, json.dumps(document).encode())

    def _accept(
        self, arrival: Arrival, route: Route, document: Any, body: bytes, unique_ids: list[str]
    ) -> None:
        state = self.server.state
        status, reply = route.success, b""
        if route.path == "/api/profile-import":
            attributes = document["data"]["attributes"]
            profile_id, created = state.profiles.upsert(attributes, arrival.received_at)
            status = 201 if created else 200
            reply = _profile_reply(profile_id, attributes)
        elif route.path == IMPORT_JOBS:
            job = state.start_import(document, arrival.received_s)
            resource = job.resource(arrival.received_s, self.base_url)
            reply = json.dumps({"data": resource, "links": resource["links"]}).encode()
        elif route.path == ERASURE_JOBS:
            state.erase(document)
        elif profiles := event_profiles(route.path, document):
            state.profiles.upsert_many(profiles, arrival.received_at)  # before any flow judges
        state.apply_consent(route.path, document, arrival.received_at)
        state.flows.events_accepted(route.path, document, arrival.received_s)
        state.catalogue.events_accepted(route.path, document, arrival.received_s)
        self._record(arrival, body, unique_ids)
        self.send(status, reply)

    def _record(self, arrival: Arrival, body: bytes, unique_ids: list[str]) -> None:
        headers = {h: self.headers[h] for h in RECORDED_HEADERS if h in self.headers}
        self.server.state.record(arrival, headers, body, unique_ids)

    def answer_headers(self, status: int) -> dict[str, str]:
        """Every answer but a 429 carries the call's RateLimit-* headers."""
        return {} if status == 429 else getattr(self, "rate_headers", {})


def _fault_reject(fault: Fault) -> _Reject:
    status = fault.status or 500
    retry_after = fault.retry_after
    if retry_after is None and status == 429:
        retry_after = 1
    if status == 429 and fault.code is None and fault.detail is None and fault.pointer is None:
        # Klaviyo's body, with the fault's Retry-After as given (a test may ask for 0).
        return _throttled(1 if retry_after is None else retry_after)
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
    """Strict JSON: UTF-8 only, no NaN or Infinity (orjson: a full sync's jobs of 10,000
    profiles are parsed several times faster than by `json`)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # bad UTF-8 included
        raise _Reject(400, code="parse_error", title="Parse error.", detail=str(exc)) from None


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
