"""The control endpoints of the simulated sending, with one meaning and one shape in every
sandbox (the flows' own fields are each sandbox's; see its package docstring):

    GET    /_sandbox/clock                  {"now": ISO 8601, "now_s": epoch s, "offset_s": s}
    POST   /_sandbox/clock                  {"advance_s": s >= 0}: move the sandbox's clock
                                            on; what fell due meanwhile goes out; 200 + clock
    GET    /_sandbox/flows                  every flow as configured, with its "messages"
    POST   /_sandbox/flows                  one flow or a list: 201 + those flows; a flow with
                                            the key of one configured replaces it; 400 (the
                                            provider's error body) and nothing added if any
                                            is bad
    DELETE /_sandbox/flows                  forget every flow, run and message: 204
    GET    /_sandbox/messages[?email=&flow=&status=]   messages in the order scheduled
                                            (common/flows.py), due ones decided first
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from dispatcher.sandbox.common.clock import SandboxClock
from dispatcher.sandbox.common.faults import parse_items
from dispatcher.sandbox.common.flows import STATUSES
from dispatcher.sandbox.common.http import SandboxHandler


class Simulated(Protocol):
    """A sandbox's flows adapter, as these endpoints use it."""

    @property
    def clock(self) -> SandboxClock: ...

    def send_due(self) -> None:
        """Decide every message due by the clock."""

    def add_flows(self, documents: list[Any]) -> list[dict[str, Any]]:
        """Configure flows from their JSON (all or none: ValueError names the bad one)."""
        ...

    def flow_list(self) -> list[dict[str, Any]]: ...

    def clear_flows(self) -> None: ...

    def messages(
        self, email: str | None = None, flow: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Due ones decided first."""
        ...


class FlowsInProcess:
    """What tests in the sandbox's own process call on either sandbox's flows,
    as the control endpoints below do over HTTP. Its `state` has `flows` (a
    Simulated) and `clock`."""

    state: Any

    def add_flow(self, **fields: Any) -> dict[str, Any]:
        """Configure one flow as POST /_sandbox/flows does (the sandbox's manual
        names its fields)."""
        (flow,) = self.state.flows.add_flows([fields])
        return flow  # type: ignore[no-any-return]

    def messages(
        self, email: str | None = None, flow: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """The flows' messages, as GET /_sandbox/messages returns them."""
        return self.state.flows.messages(email, flow, status)  # type: ignore[no-any-return]

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox's clock on, as POST /_sandbox/clock does; the new time."""
        now: float = self.state.clock.advance(seconds)
        self.state.flows.send_due()
        return now


def answer_flows(
    handler: SandboxHandler, sim: Simulated, path: str, query: Mapping[str, str], body: bytes
) -> bool:
    """Answer one of the endpoints above; False when `path` is none of them."""
    match handler.command, path.rstrip("/"):
        case "GET", "/_sandbox/clock":
            handler.send_json(200, sim.clock.to_json())
        case "POST", "/_sandbox/clock":
            _advance(handler, sim, body)
        case "GET", "/_sandbox/flows":
            handler.send_json(200, sim.flow_list())
        case "POST", "/_sandbox/flows":
            _add_flows(handler, sim, body)
        case "DELETE", "/_sandbox/flows":
            sim.clear_flows()
            handler.send(204)
        case "GET", "/_sandbox/messages":
            _messages(handler, sim, query)
        case _:
            return False
    return True


def _advance(handler: SandboxHandler, sim: Simulated, body: bytes) -> None:
    try:
        (document,) = parse_items(body, _object)
        seconds = document.get("advance_s")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError("advance_s must be a number of seconds")
        sim.clock.advance(seconds)
    except (ValueError, TypeError) as exc:
        _refuse(handler, f'Send {{"advance_s": <seconds>}}: {exc}')
        return
    sim.send_due()
    handler.send_json(200, sim.clock.to_json())


def _add_flows(handler: SandboxHandler, sim: Simulated, body: bytes) -> None:
    try:
        added = sim.add_flows(parse_items(body, _object))
    except (ValueError, TypeError) as exc:
        _refuse(handler, f"Invalid flow: {exc}")
        return
    handler.send_json(201, added)


def _messages(handler: SandboxHandler, sim: Simulated, query: Mapping[str, str]) -> None:
    status = query.get("status")
    if status is not None and status not in STATUSES:
        _refuse(handler, f"status is one of {list(STATUSES)}")
        return
    handler.send_json(200, sim.messages(query.get("email"), query.get("flow"), status))


def _object(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ValueError("send a JSON object")
    return document


def _refuse(handler: SandboxHandler, detail: str) -> None:
    handler.send(400, handler.error_body(400, detail))
