"""Dispatcher replicas (`dispatcher.main.Dispatcher`) in one event loop, on a real
nats-server, and the sandbox with Klaviyo's limits over HTTP, all on one sped-up
clock (`ScaledClock`), with every provider call noted at the time it left."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.timestamps import to_timestamp
from nats.js import JetStreamContext

from dispatcher.main import Dispatcher
from dispatcher.providers.base import Provider
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import start_sandbox
from dispatcher.settings import DispatcherSettings
from tests.bus_helpers import delivery
from tests.dispatcher.budget.helpers import EPOCH0, most_in_any_window, most_in_fixed_windows
from tests.dispatcher.budget.scaled_clock import ScaledClock
from tests.dispatcher.helpers import API_KEY
from tests.harness import eventually

# Klaviyo's limits per endpoint (burst per second, steady per minute), as
# shared/PROVIDERS.md states them: not read from the client's own table, so a
# wrong entry there shows here.
KLAVIYO_WINDOWS = {
    "/api/event-bulk-create-jobs": (10, 150),
    "/api/events": (350, 3500),
    "/api/profile-import": (75, 750),
    "/api/profile-subscription-bulk-create-jobs": (75, 750),
    "/api/profile-subscription-bulk-delete-jobs": (75, 750),
    "/api/profile-suppression-bulk-create-jobs": (75, 750),
    "/api/profile-suppression-bulk-delete-jobs": (75, 750),
    "/api/data-privacy-deletion-jobs": (3, 60),
}
EVENT_CALLS = ("/api/event-bulk-create-jobs", "/api/events")


class Site:
    """What the replicas share: NATS, the (Klaviyo) sandbox, the clock, the calls made.
    `margin_s`: the budget's, wide enough for this machine's event-loop lag at
    the clock's speed (a reservation older than half of it is taken again)."""

    def __init__(
        self, nats_url: str, *, speed: float, margin_s: float, sandbox_ahead_s: float = 0.0
    ) -> None:
        """`sandbox_ahead_s`: how far the sandbox's clock runs ahead of the replicas', so
        that its windows (epoch-aligned on its own clock) begin where the replicas' do
        not: they learn where from its answers."""
        self.nats_url, self.margin_s = nats_url, margin_s
        self.sandbox_ahead_s = sandbox_ahead_s
        self.clock = ScaledClock(speed)
        self.sandbox: Any = self._start_sandbox()
        self.account = f"test-{uuid.uuid4().hex[:12]}"  # a budget of its own
        self.calls: list[tuple[float, str, int]] = []  # (virtual time, path, status)
        self.replicas: list[Dispatcher] = []
        self.serving: list[asyncio.Task[int]] = []

    def _start_sandbox(self) -> Any:
        return start_sandbox(
            api_key=API_KEY, clock=lambda: self.clock.epoch() + self.sandbox_ahead_s
        )

    def _client(self, transport: httpx.AsyncBaseTransport) -> Provider:
        return KlaviyoClient(API_KEY, base_url=self.sandbox.base_url, transport=transport)

    def wall(self) -> datetime:
        return datetime.fromtimestamp(self.clock.epoch(), UTC)

    def start_replica(self, **settings: Any) -> Dispatcher:
        config = DispatcherSettings(
            nats_url=self.nats_url,
            sandbox_url=self.sandbox.base_url,
            metrics_address="",
            provider_account=self.account,
            budget_margin_s=self.margin_s,
            **settings,
        )
        dispatcher = Dispatcher(
            config,
            self._client(_Noted(self)),
            sleep=self.clock.sleep,
            monotonic=self.clock.monotonic,
            clock=self.wall,
        )
        self.replicas.append(dispatcher)
        self.serving.append(asyncio.create_task(dispatcher.serve()))
        return dispatcher

    async def run_until_acked(self, js: JetStreamContext, *, timeout_s: float) -> None:
        """Until both dispatcher consumers have nothing left (real seconds)."""

        async def acked() -> bool:
            return await _all_acked(js, topology.DISPATCH_EVENTS) and await _all_acked(
                js, topology.DISPATCH_CONTACTS
            )

        await eventually(acked, timeout_s=timeout_s)

    async def stop(self) -> None:
        for dispatcher in self.replicas:
            dispatcher.shutdown()
        codes = await asyncio.wait_for(asyncio.gather(*self.serving), 60)
        assert codes == [0] * len(self.serving)
        self.sandbox.close()

    def times(self, path: str) -> list[float]:
        return [when for when, called, _ in self.calls if called == path]

    def sandbox_times(self, path: str) -> list[float]:
        """The times of the calls to `path` on the sandbox's clock (epoch seconds)."""
        return [EPOCH0 + self.sandbox_ahead_s + t for t in self.times(path)]

    def throttled(self) -> list[tuple[float, str]]:
        return [(when, path) for when, path, status in self.calls if status == 429]

    def sandbox_saw_too_many(self) -> dict[str, Any]:
        """The sandbox's own account: endpoints with a 429 answered or a window whose
        peak passed its limit."""
        return {
            endpoint: seen
            for endpoint, seen in self.sandbox.throttled()["buckets"].items()
            if seen["refused"] or any(w["peak"] > w["limit"] for w in seen["windows"].values())
        }

    def windows_exceeded(self, *, seconds_aligned: bool = True) -> dict[str, tuple[int, int]]:
        """Per endpoint called: the most calls seen in one second and in one minute of
        the provider's (as the sandbox counts them: epoch-aligned on its clock), where
        that exceeds its limit; with `seconds_aligned` false, in one second however
        aligned. Either may hold more however aligned: the budget spends a second of
        Klaviyo's as it begins on the clock, and the next minute once the answers told
        where it begins (`dispatcher.budget`)."""
        exceeded = {}
        for path, (per_second, per_minute) in KLAVIYO_WINDOWS.items():
            times = self.sandbox_times(path)
            seen = (
                most_in_fixed_windows(times, 1.0)
                if seconds_aligned
                else most_in_any_window(times, 1.0),
                most_in_fixed_windows(times, 60.0),
            )
            if seen[0] > per_second or seen[1] > per_minute:
                exceeded[path] = seen
        return exceeded


class _Noted(httpx.AsyncHTTPTransport):
    def __init__(self, site: Site) -> None:
        super().__init__()
        self._site = site

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        site = self._site
        with site.clock.standing_still():
            when = site.clock.monotonic()
            response = await super().handle_async_request(request)
        site.calls.append((when, request.url.path, response.status_code))
        return response


async def _all_acked(js: JetStreamContext, durable: str) -> bool:
    info = await js.consumer_info(topology.WORK_STREAM, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


def event(event_id: str) -> bytes:
    return delivery(
        id=event_id,
        kind=bus_pb2.KIND_EVENT_TRACKED,
        contact_key=uuid.uuid5(uuid.NAMESPACE_URL, event_id).hex,
        sequence=0,
        payload=bus_pb2.EventTracked(
            event_id=event_id,
            email=f"{event_id}@example.com",
            metric="product_viewed",
            occur_time=to_timestamp(datetime(2026, 11, 2, 9, 30, tzinfo=UTC)),
            product_viewed=bus_pb2.ProductViewed(product=bus_pb2.Product(product_id="p1")),
        ),
        created=datetime.now(UTC),
    ).SerializeToString()


def contact_work(kind: str, email: str, sequence: int) -> bytes:
    """A person's profile upsert, consent change, unsubscribe or erasure."""
    key = uuid.uuid5(uuid.NAMESPACE_URL, email).hex
    payloads: dict[str, tuple[int, Any]] = {
        "upsert": (
            bus_pb2.KIND_CONTACT_UPSERTED,
            bus_pb2.ContactUpserted(contact_id=key, email=email, first_name="Ada"),
        ),
        "consent": (
            bus_pb2.KIND_CONSENT_CHANGED,
            bus_pb2.ConsentChanged(
                state=bus_pb2.ConsentState(email=email, opt_in=bus_pb2.OptIn(email=True))
            ),
        ),
        "unsubscribe": (
            bus_pb2.KIND_CONTACT_UNSUBSCRIBED,
            bus_pb2.ContactUnsubscribed(state=bus_pb2.ConsentState(email=email, suppressed=True)),
        ),
        "erase": (bus_pb2.KIND_CONTACT_ERASED, bus_pb2.ContactErased(email=email)),
    }
    kind_number, payload = payloads[kind]
    return delivery(
        id=str(uuid.uuid4()),
        kind=kind_number,  # type: ignore[arg-type]
        contact_key=key,
        sequence=sequence,
        payload=payload,
        created=datetime.now(UTC),
    ).SerializeToString()


async def publish(js: JetStreamContext, subject: str, messages: Sequence[bytes]) -> None:
    await asyncio.gather(*(js.publish(subject, m) for m in messages))
