"""What the ActiveCampaign sandbox holds: the account (under one lock, taken for each call;
with the automations' messages, automation_flows.py), its settings, its clock, the request log,
answered errors, rate-limit refusals, faults and windows."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dispatcher.sandbox.activecampaign.automation_flows import AutomationFlows, send_due
from dispatcher.sandbox.activecampaign.limits import WINDOWS
from dispatcher.sandbox.activecampaign.store import Account, seeded_account
from dispatcher.sandbox.common.clock import SandboxClock
from dispatcher.sandbox.common.faults import FaultQueue
from dispatcher.sandbox.common.recording import RequestLog
from dispatcher.sandbox.common.throttled import RefusalLog
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

    @contextmanager
    def account(self) -> Iterator[Account]:
        """The account, held for one call (calls to one account apply one at a time)."""
        with self._account_lock:
            yield self._account

    # the log

    def throttled(self) -> dict[str, Any]:
        """GET /_sandbox/throttled (common/throttled.py)."""
        return self.refusals.report(self.windows)

    def clear_log(self) -> None:
        """Forget recorded requests, rejections, refusals, peaks and the messages already
        decided (not the account: its automations' messages and runs stay)."""
        self.log.clear()
        self.refusals.clear()
        self.windows.forget_peaks()
        with self._account_lock:
            send_due(self._account, self.clock())  # what is due was sent before the clearing
            self._account.flows.forget_decided()

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset(self) -> None:
        """A new account (seeded: no flows, no messages), an empty log, no faults, fresh
        windows. The clock stays where it is."""
        self.clear_log()
        self.clear_faults()
        self.windows.clear()
        with self._account_lock:
            self._account = seeded_account(self.clock(), self.settings.first_contact_id)
