"""Figure 11: provider webhooks in, and the dashboard.

- `webhook_events_per_s`: signed Klaviyo deliveries of `BENCH_WEBHOOK_EVENTS`
  engagements (deliveries, opens and clicks of twenty campaigns by the full
  sync's shoppers, `PER_REQUEST` to a request, `IN_FLIGHT` requests at once)
  to one dispatcher's receiver; engagements applied (recorded by the
  service's engagement recorder) per second, from the first request to the
  last row. Next to it, the rate the receiver accepted them (its answers),
  the ceiling of the same run: applying cannot outrun accepting.
- `webhook_p99_ms`: each request's answer time (verified, published to
  JetStream and acknowledged). Beside it, `attribution_after_applied_s`: how
  long after the last engagement was applied the attribution worker had
  attributed the orders of everyone the opens and clicks queued.
- `dashboard_p99_ms`: GetDashboardMetrics (the last 30 days) over the
  million contacts and ten million events of figure 9 (generated once and
  cached, `bench_segments.prepare_events`) with the engagement above.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from marketing.v1 import service_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from dispatcher.webhooks.klaviyo import signature
from tests.bench import bench_segments, bench_sync
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.stats import percentile

APPLIED = Target(">=", 5000.0)
DASHBOARD = Target("<", 200.0)
PER_REQUEST = 100
IN_FLIGHT = 8
CAMPAIGNS = 20
DASHBOARD_CALLS = 100
WEBHOOK_ID = "bench-webhook"
_TOPICS = (
    ("event:klaviyo.received_email", 0.5),
    ("event:klaviyo.opened_email", 0.35),
    ("event:klaviyo.clicked_email", 0.15),
)

POLL_S = 0.2  # how often the bench looks at PostgreSQL while it waits


async def run(b: Bench, engagements: int, contacts: int, events: int) -> None:
    await bench_sync.generate(b.stack.database_url, contacts)
    await bench_segments.prepare_events(b, contacts, events)
    b.stack.start_dispatcher()
    await asyncio.to_thread(b.stack.wait_dispatcher_ready)
    try:
        await _webhooks(b, engagements, contacts)
    finally:
        b.stack.stop_dispatcher()
    await _dashboard(b, events)


async def _webhooks(b: Bench, engagements: int, contacts: int) -> None:
    rng = random.Random(7)
    now = datetime.now(UTC)
    bodies = [
        _delivery(b.tag, start, min(PER_REQUEST, engagements - start), contacts, now, rng)
        for start in range(0, engagements, PER_REQUEST)
    ]
    url = f"http://{b.stack.webhook_address}/webhooks/klaviyo"
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    began = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(
            *(
                _post(client, url, b.stack.webhook_secret, queue, latencies)
                for _ in range(IN_FLIGHT)
            )
        )
    accepted_s = time.perf_counter() - began
    applied_at = await _until_applied(b, engagements, timeout_s=b.cfg.timeout_s)
    applied_s = applied_at - began
    attributed_s = await _attribution_lag(b, applied_at)
    rate, accepted_rate = engagements / applied_s, engagements / accepted_s
    p99_ms = percentile(latencies, 99) * 1000
    b.note(
        f"{engagements:,} engagements in {len(bodies):,} signed requests: accepted in "
        f"{accepted_s:.1f} s ({accepted_rate:,.0f}/s), applied at {applied_s:.1f} s "
        f"({rate:,.0f}/s); answers p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {p99_ms:.1f} ms; their people's orders attributed "
        + (f"{attributed_s:.1f} s later" if attributed_s is not None else "not yet (timed out)")
    )
    b.results.update(
        attribution_after_applied_s=attributed_s,
        webhook_events_per_s=rate,
        webhook_accepted_per_s=accepted_rate,
        webhook_p99_ms=p99_ms,
    )
    b.rows += [
        Row(
            "webhook_events_per_s",
            rate,
            "events/s",
            f"accepted at {accepted_rate:,.0f}/s",
            APPLIED,
        ),
        Row(
            "webhook_p99_ms", p99_ms, "ms", f"{PER_REQUEST} events a request, {IN_FLIGHT} in flight"
        ),
    ]


def _delivery(
    tag: str, start: int, count: int, contacts: int, now: datetime, rng: random.Random
) -> bytes:
    items = []
    for n in range(start, start + count):
        topic = rng.choices([t for t, _ in _TOPICS], [w for _, w in _TOPICS])[0]
        shopper = rng.randint(1, contacts)
        at = now - timedelta(seconds=rng.randint(0, 29 * 86400))
        event_id = f"{tag}-{n}"
        items.append(
            {
                "external_id": event_id,
                "topic": topic,
                "payload": {
                    "data": {
                        "type": "event",
                        "id": event_id,
                        "attributes": {
                            "datetime": at.isoformat(),
                            "event_properties": {
                                "$campaign": f"bench-campaign-{n % CAMPAIGNS}",
                                "$message": f"bench-message-{n % CAMPAIGNS}",
                            },
                        },
                        "relationships": {"profile": {"data": {"type": "profile", "id": "p"}}},
                    },
                    "included": [
                        {
                            "type": "profile",
                            "id": "p",
                            "attributes": {"email": bench_segments.email(shopper)},
                        }
                    ],
                },
            }
        )
    meta = {"klaviyo_webhook_id": WEBHOOK_ID, "klaviyo_account_id": "bench"}
    return orjson.dumps({"data": items, "meta": meta})


async def _post(
    client: httpx.AsyncClient,
    url: str,
    secret: str,
    queue: asyncio.Queue[bytes],
    latencies: list[float],
) -> None:
    while not queue.empty():
        body = queue.get_nowait()
        sent = datetime.now(UTC).isoformat()
        headers = {
            "Content-Type": "application/json",
            "Klaviyo-Webhook-Id": WEBHOOK_ID,
            "Klaviyo-Timestamp": sent,
            "Klaviyo-Signature": signature(secret, body, sent),
        }
        started = time.perf_counter()
        answer = await client.post(url, content=body, headers=headers)
        latencies.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise RuntimeError(f"the receiver answered {answer.status_code}")


_APPLIED = (
    "SELECT count(*) FROM marketing_engagement WHERE provider = 'klaviyo' AND external_id LIKE :tag"
)
_QUEUED = "SELECT count(*) FROM marketing_attribution_pending"


async def _until_applied(b: Bench, wanted: int, *, timeout_s: float) -> float:
    return await _until(
        b, _APPLIED, {"tag": f"{b.tag}-%"}, lambda n: n >= wanted, "engagements applied", timeout_s
    )


async def _attribution_lag(b: Bench, applied_at: float) -> float | None:
    """Seconds from the last engagement applied to the attribution queue's
    end; None when it is not empty within the phase's timeout (a loaded
    machine): a figure of its own, not a reason to lose the phase's others."""
    try:
        emptied = await _until(
            b, _QUEUED, {}, lambda n: n == 0, "entries still queued", b.cfg.timeout_s
        )
    except TimeoutError as exc:
        b.note(f"attribution did not catch up: {exc}")
        return None
    return emptied - applied_at


async def _until(
    b: Bench,
    query: str,
    params: dict[str, str],
    done: Callable[[int], bool],
    what: str,
    timeout_s: float,
) -> float:
    """When the count `query` reads first satisfied `done` (perf_counter)."""
    engine = create_async_engine(b.stack.database_url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            async with engine.begin() as connection:
                found = int(await connection.scalar(text(query), params) or 0)
            if done(found):
                return time.perf_counter()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{found:,} {what} after {timeout_s:.0f} s")
            await asyncio.sleep(POLL_S)
    finally:
        await engine.dispose()


async def _dashboard(b: Bench, events: int) -> None:
    request = pb.GetDashboardMetricsRequest()
    await b.service.GetDashboardMetrics(request, timeout=60)  # warm: plans, caches
    times = []
    for _ in range(DASHBOARD_CALLS):
        started = time.perf_counter()
        reply = await b.service.GetDashboardMetrics(request, timeout=60)
        times.append(time.perf_counter() - started)
    board = reply.metrics
    p50, p99 = percentile(times, 50) * 1000, percentile(times, 99) * 1000
    b.note(
        f"GetDashboardMetrics x{DASHBOARD_CALLS}: p50 {p50:.0f} ms, p99 {p99:.0f} ms over "
        f"{board.total_contacts:,} contacts; {board.recent_campaigns} campaigns, "
        f"{len(board.contact_growth_trend)} days"
    )
    b.results.update(dashboard_p99_ms=p99, dashboard_p50_ms=p50)
    b.rows.append(
        Row(
            "dashboard_p99_ms",
            p99,
            "ms",
            f"p50 {p50:.0f} ms; {board.total_contacts:,} contacts, {events:,} events",
            DASHBOARD,
        )
    )
