"""What the ActiveCampaign sandbox holds: the account (under one lock, taken for each call;
with the automations' messages, automation_flows.py, and its webhooks, webhooks.py), its
settings, its clock, the request log, answered errors, rate-limit refusals, faults, windows
and the webhook sender with its deliveries (webhook_events.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dispatcher.sandbox.activecampaign import webhook_events
from dispatcher.sandbox.activecampaign.automation_flows import AutomationFlows
from dispatcher.sandbox.activecampaign.campaign_sending import CampaignSending
from dispatcher.sandbox.activecampaign.due import settle_due
from dispatcher.sandbox.activecampaign.limits import WINDOWS
from dispatcher.sandbox.activecampaign.store import Account, seeded_account
from dispatcher.sandbox.common.clock import SandboxClock
from dispatcher.sandbox.common.faults import FaultQueue
from dispatcher.sandbox.common.recording import RequestLog
from dispatcher.sandbox.common.throttled import RefusalLog
from dispatcher.sandbox.common.webhooks import Outgoing, Target, Ticker, WebhookSender
from dispatcher.sandbox.common.windows import WindowCounter

DEFAULT_IMPORT_DELAY_S = 2.0


@dataclass(frozen=True)
class Settings:
    api_key: str | None = None  # None: any non-empty Api-Token is the account's
    tracking_actid: str | None = None  # None: any non-empty actid / key is accepted
    tracking_key: str | None = None
    rate_limits: bool = True
    import_delay_s: float = DEFAULT_IMPORT_DELAY_S  # from queued to completed
    first_contact_id: int = 1


class ActiveCampaignState:
    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = SandboxClock(clock)  # moved on by POST /_sandbox/clock
        self.faults = FaultQueue()
        self.windows = WindowCounter(self.clock, WINDOWS)
        self._account_lock = threading.Lock()
        self._account = seeded_account(self.clock(), settings.first_contact_id)
        self.log = RequestLog()
        self.refusals = RefusalLog()
        self.flows = AutomationFlows(self)
        self.campaign_sends = CampaignSending(self)
        self.webhooks = WebhookSender(
            webhook_events.POLICY,
            webhook_events.encode,
            self._webhook_target,
            clock=self.clock,
            answered=self._webhook_answered,
            name="activecampaign-sandbox-webhooks",
        )
        # Once the account has a webhook, due messages are decided without a request.
        self.ticker = Ticker(self.flows.send_due, name="activecampaign-sandbox-flows")

    @contextmanager
    def account(self) -> Iterator[Account]:
        """The account, held for one call (calls to one account apply one at a time). What
        the call queued for webhooks goes to the sender as it lets go."""
        with self._account_lock:
            try:
                yield self._account
            finally:
                # Handed over a webhook at a time: a campaign's seeded engagement queues
                # an event per message sent.
                outbox: dict[str, list[Outgoing]] = {}
                for webhook_id, item in self._account.take_webhook_outbox():
                    outbox.setdefault(webhook_id, []).append(item)
                for webhook_id, items in outbox.items():
                    self.webhooks.submit(webhook_id, items)
                if len(self._account.webhooks):
                    self.ticker.start()

    def _webhook_target(self, webhook_id: str) -> Target | None:
        with self._account_lock:
            return webhook_events.target(self._account, webhook_id)

    def _webhook_answered(self, webhook_id: str, status: int | None) -> None:
        with self._account_lock:
            webhook_events.answered(self._account, webhook_id, status)

    # the log

    def throttled(self) -> dict[str, Any]:
        """GET /_sandbox/throttled (common/throttled.py)."""
        return self.refusals.report(self.windows)

    def clear_log(self) -> None:
        """Forget recorded requests, rejections, refusals, peaks, webhook delivery attempts,
        the messages already decided and the campaign messages recorded (not the account: its
        automations' messages and runs, its campaigns with their counters, and its webhooks,
        stay)."""
        with self.account() as account:
            settle_due(account, self.clock())  # what is due was sent before the clearing
            account.flows.forget_decided()
            account.campaign_book.clear()
        self.log.clear()
        self.webhooks.log.clear()
        self.refusals.clear()
        self.windows.forget_peaks()

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """A new account (seeded: no flows, no messages, no webhooks), an empty log, no
        faults, fresh windows, nothing waiting to go to a webhook. The clock stays where it
        is."""
        self.clear_log()
        self.clear_faults()
        self.windows.clear()
        with self._account_lock:
            self._account = seeded_account(self.clock(), self.settings.first_contact_id)
            self.webhooks.drop_pending()
