"""What the sandbox remembers: accepted requests, the unique_id index, rejections, queued
faults, rate-limit windows, the fake account's profiles, consent, lists and import jobs, and
its flows with the messages they sent (flows.py), its templates and campaigns with the
messages they sent (templates.py, campaigns.py), its webhooks with what was sent to them
(webhook_events.py). One lock per part; every operation under one is O(1) or a copy."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from dispatcher.sandbox.common.clock import SandboxClock
from dispatcher.sandbox.common.faults import FaultQueue, object_fields
from dispatcher.sandbox.common.recording import Arrival, RequestLog, iso
from dispatcher.sandbox.common.throttled import RefusalLog
from dispatcher.sandbox.common.windows import RateWindow, Refusal
from dispatcher.sandbox.klaviyo.campaigns import KlaviyoCampaigns
from dispatcher.sandbox.klaviyo.catalogue import CatalogueBook
from dispatcher.sandbox.klaviyo.consent import ConsentBook
from dispatcher.sandbox.klaviyo.flows import KlaviyoFlows
from dispatcher.sandbox.klaviyo.imports import (
    DEFAULT_PROCESSING_S,
    ImportErrorItem,
    ImportJob,
    ImportJobs,
)
from dispatcher.sandbox.klaviyo.lists import ListStore
from dispatcher.sandbox.klaviyo.profiles import ProfileStore
from dispatcher.sandbox.klaviyo.push_tokens import PushTokenBook
from dispatcher.sandbox.klaviyo.rates import RateLimiter
from dispatcher.sandbox.klaviyo.templates import TemplateBook
from dispatcher.sandbox.klaviyo.validation import import_list_ids, import_profile_errors
from dispatcher.sandbox.klaviyo.webhook_events import DEFAULT_BACKOFF_S, KlaviyoWebhooks

RECORDED_HEADERS = ("revision", "content-type", "accept", "user-agent")


@dataclass(frozen=True)
class Throttle:
    """A rate limit like Klaviyo's: at most `limit` requests whose path starts with
    `path` (any path when None) per `window_s`-second window, a window starting with
    its first request. Past it: 429 with Retry-After, the seconds left in the window."""

    path: str | None = None
    limit: int = 1
    window_s: int = 1

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_s < 1:
            raise ValueError("limit and window_s must be at least 1")

    @classmethod
    def from_json(cls, document: Any) -> Throttle:
        return cls(**object_fields(cls, "throttle", document, {"path"}))

    def matches(self, path: str) -> bool:
        return self.path is None or path.startswith(self.path)

    @property
    def bucket(self) -> RateWindow:
        """How GET /_sandbox/throttled names and describes it."""
        return RateWindow(f"throttle {self.path or '*'}", self.limit, self.window_s)


@dataclass
class _Window:
    """The current window of one throttle: when it started, requests it admitted."""

    throttle: Throttle
    started: float = -math.inf
    admitted: int = 0


class SandboxState:
    """`clock` (epoch seconds) times arrivals, Klaviyo's rate windows, import jobs and the
    flows' messages, moved on by POST /_sandbox/clock (common/clock.py); `monotonic` times the
    opt-in throttles. Both are injectable for virtual-clock tests. `webhook_backoff_s` is the
    wait before a failed webhook delivery's first retry (webhook_events.py)."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], float] = time.time,
        rate_limits: bool = True,
        import_processing_s: float = DEFAULT_PROCESSING_S,
        webhook_backoff_s: float = DEFAULT_BACKOFF_S,
    ) -> None:
        self._monotonic = monotonic
        self.clock = SandboxClock(clock)
        self.limiter = RateLimiter(self.clock, enforce=rate_limits)
        self.profiles = ProfileStore()
        self.imports = ImportJobs(import_processing_s)
        self.faults = FaultQueue()
        self.log = RequestLog()
        self.refusals = RefusalLog()
        self._throttles: list[_Window] = []
        self._lock = threading.Lock()  # the throttles and the unique_id index
        self._events: dict[str, int] = {}
        self.consent = ConsentBook()  # account state: kept by clear_log(), like profiles
        self.lists = ListStore()  # the lists' records; who is in each is in `consent`
        self.catalogue = CatalogueBook()  # campaigns and metrics: account state, kept too
        self.push_tokens = PushTokenBook()  # account state, kept too
        self.webhooks = KlaviyoWebhooks(
            self.clock, self.profiles, self.consent, backoff_s=webhook_backoff_s
        )
        self.flows = KlaviyoFlows(
            self.clock, self.profiles, self.consent, sent=self.webhooks.message_sent
        )
        self.templates = TemplateBook()  # account state, kept by clear_log()
        self.campaigns = KlaviyoCampaigns(
            self.clock,
            self.profiles,
            self.consent,
            self.push_tokens,
            self.webhooks,
            self.catalogue.new_id,
        )
        self.webhooks.ticking(self.send_due)

    def send_due(self) -> None:
        """What fell due by the clock goes out: flows' messages, then campaigns (called
        before every request and view, after every move of the clock, and by the ticker)."""
        self.flows.send_due()
        self.settle()  # a campaign goes to the lists as the finished imports left them
        self.campaigns.send_due()

    def now_iso(self) -> str:
        return iso(self.clock())

    def clear_faults(self) -> None:
        """Forget queued faults and throttles."""
        self.faults.clear()
        with self._lock:
            self._throttles.clear()

    # throttles

    def add_throttle(self, throttle: Throttle) -> None:
        with self._lock:
            self._throttles.append(_Window(throttle))

    def throttle_refusal(self, path: str) -> Refusal | None:
        """The refusal when an opt-in throttle refuses this request (its bucket is
        "throttle <path>"); None admits it (counted in every matching throttle's window)."""
        with self._lock:  # the clock read under it: in the order the windows change
            now = self._monotonic()
            windows = [w for w in self._throttles if w.throttle.matches(path)]
            for window in windows:
                if now - window.started >= window.throttle.window_s:
                    window.started, window.admitted = now, 0
            for window in windows:
                throttle = window.throttle
                if window.admitted >= throttle.limit:
                    left = window.started + throttle.window_s - now
                    bucket = RateWindow(
                        f"throttle {throttle.path or '*'}", throttle.limit, throttle.window_s
                    )
                    return Refusal(bucket, max(1, math.ceil(left)))
            for window in windows:
                window.admitted += 1
        return None

    def throttles(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(window.throttle) for window in self._throttles]

    # recordings

    def record(
        self, arrival: Arrival, headers: dict[str, str], body: bytes, unique_ids: list[str]
    ) -> None:
        self.log.record(arrival, headers, body)
        with self._lock:
            events = self._events
            for unique_id in unique_ids:
                events[unique_id] = events.get(unique_id, 0) + 1

    def throttled(self) -> dict[str, Any]:
        """GET /_sandbox/throttled (common/throttled.py): a bucket per endpoint, and one per
        opt-in throttle ("throttle <path>") that refused a call."""
        return self.refusals.report(self.limiter.windows)

    # the account

    def apply_consent(self, path: str, document: dict[str, Any], at: str) -> None:
        """A consent job: the consent book changes, and the profiles it names exist."""
        if not self.consent.applies_to(path):
            return
        self.consent.apply(path, document, at)
        attributes = document.get("data", {}).get("attributes", {})
        items = (attributes.get("profiles") or {}).get("data", ())
        self.profiles.upsert_many([_identity(item["attributes"]) for item in items], at)

    def erase(self, document: dict[str, Any]) -> None:
        """A data privacy deletion job: Klaviyo deletes the profile (it runs later there;
        here at once), and with it its consent and list memberships."""
        data = document["data"]["attributes"]["profile"]["data"]
        attributes = data.get("attributes") or {}
        if data.get("id"):
            identifier, value = "id", str(data["id"])
        else:
            identifier = "email" if attributes.get("email") else "phone_number"
            value = str(attributes[identifier])
        email = self.profiles.delete(identifier, value)
        if identifier == "email":
            email = value
        phone = value if identifier == "phone_number" else None
        self.consent.forget(email, phone)
        self.push_tokens.forget(email, phone)
        self.flows.profile_deleted(email, phone, self.clock())

    def start_import(self, document: dict[str, Any], now: float) -> ImportJob:
        """A validated bulk import job: profiles that cannot be imported become its errors."""
        data = document["data"]
        valid, errors = [], []
        for index, item in enumerate(data["attributes"]["profiles"]["data"]):
            attributes = item["attributes"]
            problem = import_profile_errors(attributes, index)
            if problem is None:
                valid.append(attributes)
            else:
                error = ImportErrorItem(f"{index:05d}", problem.pointer, problem.detail, attributes)
                errors.append(error)
        return self.imports.add(valid, errors, import_list_ids(data), now)

    def settle(self) -> None:
        """Apply the import jobs that completed by now (called before serving a request)."""
        now = self.clock()
        for job in self.imports.take_completed(now):
            at = iso(job.created_s + job.processing_s)
            self.profiles.upsert_many(job.profiles, at)
            self.consent.join_lists(job.profiles, job.list_ids)

    def clear_log(self) -> None:
        """Forget recorded requests, rejections, refusals, peaks, the unique_id index, the
        flows with their messages, the campaigns' messages and engagement configuration, and
        the webhooks with their deliveries (not faults, profiles, templates, campaigns or live
        windows: those are the account's state)."""
        self.flows.clear_flows()
        self.campaigns.clear()
        self.webhooks.clear()
        self.log.clear()
        self.refusals.clear()
        self.limiter.windows.forget_peaks()
        with self._lock:
            self._events.clear()

    def event_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._events)

    def events_held(self) -> int:
        """How many distinct events (unique ids) were accepted."""
        with self._lock:
            return len(self._events)


def _identity(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: attributes[k] for k in ("email", "phone_number") if attributes.get(k)}
