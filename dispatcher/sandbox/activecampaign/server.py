"""The ActiveCampaign sandbox's HTTP side: checks in the order the provider's gateway makes
them (queued fault, the account's 5/s, Api-Token, route), then the call under the account."""

from __future__ import annotations

import functools
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dispatcher.sandbox.activecampaign import control, tracking
from dispatcher.sandbox.activecampaign.body import Call
from dispatcher.sandbox.activecampaign.due import settle_due
from dispatcher.sandbox.activecampaign.errors import ApiError, Throttled, bare, forbidden
from dispatcher.sandbox.activecampaign.limits import API_PER_SECOND, EVENTS_PER_SECOND
from dispatcher.sandbox.activecampaign.routes import ROUTES
from dispatcher.sandbox.activecampaign.routing import resolve
from dispatcher.sandbox.activecampaign.state import ActiveCampaignState
from dispatcher.sandbox.common.faults import Fault
from dispatcher.sandbox.common.http import SandboxHandler, SandboxHTTPServer
from dispatcher.sandbox.common.recording import Arrival
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
        received = self.arrived(state.clock)
        url = urlsplit(self.path)
        body = self.read_body(MAX_BODY_BYTES)
        if body is None:
            return
        query = _query(url.query)
        if url.path.startswith(control.PREFIX):
            control.answer(self, state, url.path, query, body)
            return
        arrival = Arrival(
            self.command, url.path, url.query, _endpoint(self.command, url.path), received
        )
        try:
            self._checked_call(arrival, query, body)
        except ApiError as error:
            self._answer_error(arrival, error)

    def _checked_call(self, arrival: Arrival, query: dict[str, str], body: bytes) -> None:
        if not self._pass_fault(arrival.path):
            return
        state = self.server.state
        if arrival.path == EVENT_PATH:
            self._admit(EVENTS_PER_SECOND, arrival.received_s)
            status, answer, recorded = tracking.track(state, self.command, body)
        else:
            self._admit(API_PER_SECOND, arrival.received_s)
            status, answer = self._api_call(arrival, query, body)
            recorded = body
        if arrival.path == EVENT_PATH and answer.get("success") == 0:
            state.log.reject(arrival, status, body=answer)  # trackcmp's refusal
        else:
            headers = {h: self.headers[h] for h in RECORDED_HEADERS if h in self.headers}
            state.log.record(arrival, headers, recorded)
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

    def _admit(self, window: RateWindow, at: float) -> None:
        refusal = self._draw(window, at)
        if refusal is not None:
            raise Throttled(refusal)

    def _draw(self, window: RateWindow, at: float) -> Refusal | None:
        """Count a call in `window` at its arrival `at`, as the provider counts it; the
        refusal when that window is full and limits are on."""
        state = self.server.state
        return state.windows.admit([window], enforce=state.settings.rate_limits, at=at)

    def _api_call(self, arrival: Arrival, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        state = self.server.state
        token = self.headers.get("Api-Token", "").strip()
        if not token or (state.settings.api_key is not None and token != state.settings.api_key):
            raise forbidden()
        route, params = resolve(ROUTES, self.command, arrival.path)
        call = Call(
            params,
            query,
            _json(body),
            arrival.received_s,
            admit=functools.partial(self._draw, at=arrival.received_s),
            import_delay_s=state.settings.import_delay_s,
            size=len(body),
        )
        with state.account() as account:
            settle_due(account, call.now)  # before the call changes anything
            return route.handle(account, call)

    def _answer_error(self, arrival: Arrival, error: ApiError) -> None:
        state = self.server.state
        if isinstance(error, Throttled):
            state.refusals.add(arrival, error.refusal, error.status)
        state.log.reject(arrival, error.status, body=error.body)
        headers: dict[str, str | None] = dict(error.headers)
        self.send(error.status, json.dumps(error.body).encode(), headers=headers)


def _endpoint(method: str, path: str) -> str | None:
    """The route a call names ("GET /api/3/contacts/{id}"); None when none serves it."""
    if path == EVENT_PATH:
        return f"POST {EVENT_PATH}"
    try:
        route, _ = resolve(ROUTES, method, path)
    except ApiError:
        return None
    return f"{route.method} {route.template}"


def _fault_error(fault: Fault) -> ApiError:
    status = fault.status or 500
    retry_after = fault.retry_after
    if retry_after is None and status == 429:
        retry_after = 1
    body = {"message": fault.detail} if fault.detail else {}
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return ApiError(status, body, headers=headers)


def _query(text: str) -> dict[str, str]:
    """The last value of each parameter; a list parameter (`ids[]=1&ids[]=2`) keeps every
    value, joined by commas."""
    return {
        name: ",".join(values) if name.endswith("[]") else values[-1]
        for name, values in parse_qs(text, keep_blank_values=True).items()
    }


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError included
        raise bare(400) from None
