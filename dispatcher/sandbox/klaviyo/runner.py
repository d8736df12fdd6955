"""Running the sandbox in-process: `start_sandbox()` serves it from a background thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dispatcher.sandbox.common.campaign_sends import DEFAULT_LIMIT, MessageFilter
from dispatcher.sandbox.common.flow_control import FlowsInProcess
from dispatcher.sandbox.common.running import RunningServer
from dispatcher.sandbox.klaviyo import list_routes
from dispatcher.sandbox.klaviyo.control import engage, plant_profile
from dispatcher.sandbox.klaviyo.imports import DEFAULT_PROCESSING_S
from dispatcher.sandbox.klaviyo.server import SandboxServer
from dispatcher.sandbox.klaviyo.state import SandboxState, Throttle
from dispatcher.sandbox.klaviyo.webhook_events import DEFAULT_BACKOFF_S


class Sandbox(FlowsInProcess, RunningServer):
    """A running Klaviyo sandbox (background thread). Close it, or use it as a context manager."""

    def __init__(self, server: SandboxServer) -> None:
        super().__init__(server, "klaviyo-sandbox", server.state)
        self.state: SandboxState = server.state

    def event_counts(self) -> dict[str, int]:
        """unique_id -> accepted submissions, as GET /_sandbox/events returns it."""
        return self.state.event_counts()

    def profiles(self, email: str | None = None) -> list[dict[str, Any]]:
        """Consent per profile, as GET /_sandbox/profiles[?email=] returns it."""
        return self.state.consent.view(email)

    def lists(self) -> list[dict[str, Any]]:
        """Each list with its members, as GET /_sandbox/lists returns them."""
        self.state.settle()
        return list_routes.view(self.state)

    def create_list(self, name: str, opt_in_process: str | None = None) -> str:
        """A list made as an operator would make it (not recorded, not rate limited); its id."""
        return self.state.lists.create(name, opt_in_process, self.state.now_iso()).id

    def plant_profile(self, **fields: Any) -> dict[str, Any]:
        """Set a stored profile's fields, properties, consent, suppression and lists, as
        POST /_sandbox/profiles does; the profile as Klaviyo would show it."""
        self.state.flows.send_due()
        return plant_profile(self.state, fields, self.base_url)

    def add_throttle(self, **fields: Any) -> None:
        """Rate-limit matching requests: path, limit (requests), window_s (seconds)."""
        self.state.add_throttle(Throttle(**fields))

    def engage(self, **fields: Any) -> dict[str, Any]:
        """What a person did with a message, as POST /_sandbox/engagement takes it (email,
        type, message_id, url, bounce_type, phone, campaign_id, reason): its effect, and
        {"external_ids", "webhooks"} it will be delivered to."""
        self.state.flows.send_due()
        return engage(self.state, fields)

    def advance_clock(self, seconds: float) -> float:
        """Move the sandbox's clock on, as POST /_sandbox/clock does; what fell due goes
        out (flows' messages and campaigns); the new time."""
        now: float = self.state.clock.advance(seconds)
        self.state.send_due()
        return now

    def campaign_messages(self, **query: str) -> dict[str, Any]:
        """The campaigns' messages, as GET /_sandbox/campaign-messages returns them
        ({"messages", "total"}; campaign_id, email, status, limit, offset)."""
        self.state.send_due()
        limit, offset = int(query.pop("limit", DEFAULT_LIMIT)), int(query.pop("offset", 0))
        page, total = self.state.campaigns.book.messages(
            MessageFilter(**query), limit=limit, offset=offset
        )
        return {"messages": page, "total": total}

    def webhook_deliveries(self, webhook: str | None = None) -> list[dict[str, Any]]:
        """Every webhook delivery attempt, as GET /_sandbox/webhook-deliveries returns them."""
        return self.state.webhooks.deliveries.entries(webhook)

    def webhooks_idle(self, timeout_s: float = 10.0) -> bool:
        """Decide the messages due and send the campaigns due, then wait until their seeded
        engagements are reported and no webhook delivery is pending, in flight or waiting for
        a retry."""
        self.state.send_due()
        deadline = time.monotonic() + timeout_s
        if not self.state.campaigns.wait_reported(timeout_s):
            return False
        return self.state.webhooks.sender.wait_idle(max(0.0, deadline - time.monotonic()))

    def reset(self) -> None:
        """Forget requests, rejections, refusals, peaks, events, flows and their messages,
        webhooks and their deliveries (as DELETE /_sandbox/requests)."""
        self.state.clear_log()

    def close(self) -> None:
        super().close()
        self.state.campaigns.close()
        self.state.webhooks.close()


def start_sandbox(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_key: str | None = None,
    rate_limits: bool = True,
    clock: Callable[[], float] = time.time,
    import_processing_s: float = DEFAULT_PROCESSING_S,
    webhook_backoff_s: float = DEFAULT_BACKOFF_S,
) -> Sandbox:
    """Serve the Klaviyo subset on host:port (0 = a free port). With `api_key`, only
    `Authorization: Klaviyo-API-Key <api_key>` is accepted; otherwise any well-formed key.

    Klaviyo's rate limits apply per key unless `rate_limits=False`, which is only for
    measuring ceilings (the limits are still counted: the peaks in `Sandbox.throttled()`). `clock`
    (epoch seconds, plus what POST /_sandbox/clock moved it on) drives the rate windows, arrival
    times, the flows' messages and import jobs, which complete `import_processing_s` after they
    were accepted. A webhook delivery not answered 2xx is retried `webhook_backoff_s` later,
    then twice as long after each further attempt (webhook_events.py)."""
    state = SandboxState(
        clock=clock,
        rate_limits=rate_limits,
        import_processing_s=import_processing_s,
        webhook_backoff_s=webhook_backoff_s,
    )
    return Sandbox(SandboxServer(host, port, state, api_key))
