"""Issue 13 §2 with ActiveCampaign: 2-3 dispatcher replicas deliver a mix of placed
orders (a look and a write each, and a customer's look-up and create on first use),
tracked events, consent changes, unsubscribes (the suppression tag) and erasures to its
sandbox with the limits on. The sandbox never refuses a request for the rate and none
of its windows (5 requests a second to /api/3, 5 to event tracking) takes more, nor
does any second however aligned. Replicas, nats-server and sandbox run on one clock
sped up SPEED times (provider_site.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from marketing_runtime import topology
from prometheus_client import REGISTRY

from tests.dispatcher.budget.activecampaign_site import (
    PER_SECOND,
    ActiveCampaignSite,
    placed_order,
)
from tests.dispatcher.budget.provider_site import contact_work, event, publish
from tests.processes import NatsServer

SPEED = 4.0  # the work takes about a minute of the account's 5 requests/s
MARGIN_S = 0.3  # as test_window_property: wide for a loaded machine's event-loop lag
ORDERS, TRACKED, CONSENT, UNSUBSCRIBE, ERASE = 15, 30, 8, 8, 4


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = NatsServer(Path(tmp_path_factory.mktemp("nats-ac-budget")))
    server.start()
    yield server.url
    server.stop()


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_never_exceed_activecampaigns_rate(nats_url: str, replicas: int) -> None:
    site = ActiveCampaignSite(nats_url, speed=SPEED, margin_s=MARGIN_S)
    tag = uuid.uuid4().hex[:8]
    orders = [placed_order(f"o-{tag}-{i}", f"buyer-{tag}-{i}@example.com") for i in range(ORDERS)]
    tracked = [event(f"ev-{tag}-{i}") for i in range(TRACKED)]
    erased = [f"erase-{tag}-{i}@example.com" for i in range(ERASE)]
    contacts = [
        contact_work(kind, f"{kind}-{tag}-{i}@example.com", 1)
        for kind, count in (("consent", CONSENT), ("unsubscribe", UNSUBSCRIBE))
        for i in range(count)
    ]
    contacts += [contact_work("upsert", email, 1) for email in erased]
    contacts += [contact_work("erase", email, 2) for email in erased]

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await topology.declare(js)
        await publish(js, topology.EVENTS_SUBJECT, orders + tracked)
        await publish(js, topology.CONTACTS_SUBJECT, contacts)
        try:
            for _ in range(replicas):
                site.start_replica(linger_s=0.01, lease_ttl_s=15.0)
            await site.run_until_acked(js, timeout_s=120)
        finally:
            await site.stop()
            await nc.close()

    kv_before = {op: _kv_ops(op) for op in ("get", "update", "conflict")}
    asyncio.run(scenario())

    requests = len(site.calls)
    kv = {op: (_kv_ops(op) - kv_before[op]) / requests for op in kv_before}
    print("KV operations per request: " + ", ".join(f"{op} {n:.2f}" for op, n in kv.items()))
    assert site.throttled() == []
    assert site.too_many() == {}
    assert all(seen <= PER_SECOND[bucket] for bucket, seen in site.requests_per_second().items())
    # Everything arrived, once: the budget held the work back, it did not lose it.
    assert len(site.sandbox.view("orders")) == ORDERS
    assert len(site.sandbox.view("events")) == TRACKED
    assert all(site.sandbox.contacts(email) == [] for email in erased)
    suppressed = [c for c in site.sandbox.contacts() if "marketing-suppressed" in c["tags"]]
    assert len(suppressed) == UNSUBSCRIBE
    # Orders took more than one request each: counting calls would have let them through.
    api_requests = [path for _, path, _ in site.calls if path.startswith("/api/3/")]
    assert len(api_requests) > 2 * ORDERS + CONSENT + UNSUBSCRIBE + 2 * ERASE


def _kv_ops(operation: str) -> float:
    name = "marketing_dispatcher_budget_kv_operations_total"
    return REGISTRY.get_sample_value(name, {"operation": operation}) or 0.0
