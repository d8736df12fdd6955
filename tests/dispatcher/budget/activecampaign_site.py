"""Dispatcher replicas delivering to the ActiveCampaign sandbox with its limits on (5
requests/s per account over /api/3, 5/s for event tracking), as `Site` does for Klaviyo,
and the placed orders that arrive as events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from marketing.bus.v1 import bus_pb2
from marketing_runtime.timestamps import to_timestamp

from dispatcher.main import Dispatcher
from dispatcher.providers.activecampaign import ActiveCampaignClient, TrackingAccount
from dispatcher.providers.base import Provider
from dispatcher.sandbox.activecampaign import ActiveCampaignSandbox, start_activecampaign_sandbox
from dispatcher.settings import SANDBOX_API_KEY, SANDBOX_EVENT_ACCOUNT_ID, SANDBOX_EVENT_KEY
from tests.bus_helpers import delivery
from tests.dispatcher.budget.helpers import EPOCH0, most_in_any_window
from tests.dispatcher.budget.provider_site import Site

# ActiveCampaign's limits as shared/PROVIDERS.md states them, per second: not read from
# the client's table, so a wrong entry there shows here.
PER_SECOND = {"api": 5, "event": 5}


class ActiveCampaignSite(Site):
    sandbox: ActiveCampaignSandbox

    def _start_sandbox(self) -> ActiveCampaignSandbox:
        return start_activecampaign_sandbox(
            api_key=SANDBOX_API_KEY,
            tracking_actid=SANDBOX_EVENT_ACCOUNT_ID,
            tracking_key=SANDBOX_EVENT_KEY,
            import_delay_s=0.0,
            clock=self.clock.epoch,
        )

    def _client(self, transport: httpx.AsyncBaseTransport) -> Provider:
        tracking = TrackingAccount(
            SANDBOX_EVENT_ACCOUNT_ID, SANDBOX_EVENT_KEY, self.sandbox.tracking_url
        )
        return ActiveCampaignClient(
            self.sandbox.base_url, SANDBOX_API_KEY, tracking, transport=transport
        )

    def start_replica(self, **settings: Any) -> Dispatcher:
        return super().start_replica(provider="activecampaign", **settings)

    def requests_per_second(self) -> dict[str, int]:
        """The most requests to /api/3 and to event tracking in one second, however the
        seconds are aligned (from the times the requests left)."""
        api = [EPOCH0 + t for t, path, _ in self.calls if path.startswith("/api/3/")]
        event = [EPOCH0 + t for t, path, _ in self.calls if path == "/event"]
        return {"api": most_in_any_window(api, 1.0), "event": most_in_any_window(event, 1.0)}

    def too_many(self) -> dict[str, Any]:
        """What the sandbox refused for the rate (429s) and its windows above the limit."""
        seen = self.sandbox.throttled()
        over = {
            f"{name} {window_s} s": window["peak"]
            for name, bucket in seen["buckets"].items()
            for window_s, window in bucket["windows"].items()
            if window["peak"] > window["limit"]
        }
        return {"answers": seen["answers"], "over": over} if seen["answers"] or over else {}


def placed_order(order_id: str, email: str) -> bytes:
    usd = bus_pb2.Money(currency_code="USD", units=10)
    line = bus_pb2.LineItem(product_id="sku-1", quantity=1, unit_price=usd)
    return delivery(
        id=order_id,
        kind=bus_pb2.KIND_EVENT_TRACKED,
        contact_key=uuid.uuid5(uuid.NAMESPACE_URL, email).hex,
        sequence=0,
        payload=bus_pb2.EventTracked(
            event_id=order_id,
            email=email,
            metric="placed_order",
            occur_time=to_timestamp(datetime(2026, 11, 2, 9, 30, tzinfo=UTC)),
            placed_order=bus_pb2.PlacedOrder(
                order=bus_pb2.Order(order_id=order_id, lines=[line], total=usd)
            ),
        ),
        created=datetime.now(UTC),
    ).SerializeToString()
