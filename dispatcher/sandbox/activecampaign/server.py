"""The ActiveCampaign sandbox's HTTP side: checks in the order the provider's gateway makes
them (queued fault, the account's 5/s, Api-Token, route), then the call under the account."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dispatcher.sandbox.activecampaign import control, imports, tracking
from dispatcher.sandbox.activecampaign.body import Call
from dispatcher.sandbox.activecampaign.errors import ApiError, Throttled, bare, forbidden
from dispatcher.sandbox.activecampaign.limits import API_PER_SECOND, EVENTS_PER_SECOND
from dispatcher.sandbox.activecampaign.routes import ROUTES
from dispatcher.sandbox.activecampaign.routing import resolve
from dispatcher.sandbox.activecampaign.state import ActiveCampaignState
from dispatcher.sandbox.common.faults import Fault
from dispatcher.sandbox.common.http import SandboxHandler, SandboxHTTPServer
from dispatcher.sandbox.common.windows import RateWindow, Refusal

API_PREFIX = "/api/3/"
EVENT_PATH = "/event"
MAX_BODY_BYTES = 4 * 1024 * 1024  # bulk import checks its own 399,999-byte cap
RECORDED_HEADERS = ("content-type", "accept", "user-agent")


class ActiveCampaignServer(SandboxHTTPServer):
    def __init__(self, host: str, port: int, state: ActiveCampaignState) -> None:
        self.state = state
        super().__init__(host, port, _Handler)


class _Handler(SandboxHandler):
    server_version = "ActiveCampaignSandbox/1.0"
    server: ActiveCampaignServer

    def error_body(self, status: int, detail: str) -> bytes:
        return json.dumps({"message": detail}).encode()

    def handle_request(self) -> None:
        state = self.server.state
        received = state.clock()
        url = urlsplit(self.path)
        body = self.read_body(MAX_BODY_BYTES)
        if body is None:
            return
        if url.path.startswith(control.PREFIX):
            control.answer(self, state, url.path, _query(url.query), body)
            return
        try:
            self._checked_call(url.path, _query(url.query), body, received)
        except ApiError as error:
            self._answer_error(url.path, error, received)

    def _checked_call(self, path: str, query: dict[str, str], body: bytes, received: float) -> None:
        if not self._pass_fault(path):
            return
        if path == EVENT_PATH:
            self._admit(EVENTS_PER_SECOND)
            status, answer, recorded = tracking.track(self.server.state, self.command, body)
            endpoint = f"POST {EVENT_PATH}"
        else:
            self._admit(API_PER_SECOND)
            endpoint, (status, answer) = self._api_call(path, query, body, received)
            recorded = body
        state = self.server.state
        if path == EVENT_PATH and answer.get("success") == 0:
            state.reject(self.command, path, status, answer, received)  # trackcmp's refusal
        else:
            headers = {h: self.headers[h] for h in RECORDED_HEADERS if h in self.headers}
            query_text = urlsplit(self.path).query
            state.record(self.command, path, query_text, endpoint, headers, recorded, received)
        self.send_json(status, answer)

    def _pass_fault(self, path: str) -> bool:
        """Apply a queued fault: False when the sandbox closed during its latency."""
        fault = self.server.state.faults.take(path)
        if fault is None:
            return True
        if fault.latency_ms and self.sleep_interrupted(fault.latency_ms):
            return False
        if fault.status is not None:
            raise _fault_error(fault)
        return True

    def _admit(self, window: RateWindow) -> None:
        refusal = self._draw(window)
        if refusal is not None:
            raise Throttled(refusal)

    def _draw(self, window: RateWindow) -> Refusal | None:
        """Count a call in `window`; the refusal when it is full and limits are on."""
        state = self.server.state
        return state.windows.admit([window], enforce=state.settings.rate_limits)

    def _api_call(
        self, path: str, query: dict[str, str], body: bytes, received: float
    ) -> tuple[str, tuple[int, Any]]:
        """The route's name ("GET /api/3/contacts/{id}") and its answer."""
        state = self.server.state
        token = self.headers.get("Api-Token", "").strip()
        if not token or (state.settings.api_key is not None and token != state.settings.api_key):
            raise forbidden()
        route, params = resolve(ROUTES, self.command, path)
        call = Call(
            params,
            query,
            _json(body),
            received,
            admit=self._draw,
            import_delay_s=state.settings.import_delay_s,
            size=len(body),
        )
        with state.account() as account:
            imports.settle(account, call.now)
            return f"{route.method} {route.template}", route.handle(account, call)

    def _answer_error(self, path: str, error: ApiError, received: float) -> None:
        state = self.server.state
        if isinstance(error, Throttled):
            window, retry_after = error.refusal.window.name, error.refusal.retry_after
            state.throttle(self.command, path, error.status, window, retry_after, received)
        state.reject(self.command, path, error.status, error.body, received)
        headers: dict[str, str | None] = dict(error.headers)
        self.send(error.status, json.dumps(error.body).encode(), headers=headers)


def _fault_error(fault: Fault) -> ApiError:
    status = fault.status or 500
    retry_after = fault.retry_after
    if retry_after is None and status == 429:
        retry_after = 1
    body = {"message": fault.detail} if fault.detail else {}
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return ApiError(status, body, headers=headers)


def _query(text: str) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        raise bare(400) from None
