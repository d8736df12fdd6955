"""Figure 9: segments over a million contacts and ten million events.

The contacts are the full sync's (bench_sync.generate), the events are
generated here once per stack, ten per contact on average over the last year:
60 % product views, 20 % adds to cart, 20 % orders. Four figures:
- `segment_rebuild_1m_s`: CreateSegment of a three-condition filter (gold
  tier, email consent, at least two orders in the last 90 days), which
  evaluates it over every contact before it answers;
- `segment_preview_p99_ms`: PreviewSegment counts of the same filter;
- `segment_update_p99_s`: contact changes offered at 1,000/s (open loop), each
  timed from its scheduled start until the segment refresher has drained it
  (its segments re-evaluated and committed);
- `audience_500k_s`: an audience of about 500,000 recipients (email consent,
  not suppressed) streamed in pages, with the peak of memory it traced."""

from __future__ import annotations

import asyncio
import random
import time
import tracemalloc
import uuid

import grpc
from marketing.v1 import consent_pb2
from marketing.v1 import segment_pb2 as sp
from marketing.v1 import service_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.segments.audiences import audience
from service.storage.database import Database
from service.storage.models import ConsentType
from tests.bench import bench_sync
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.stats import percentile

REBUILD = Target("<", 30.0)
PREVIEW = Target("<", 2000.0)
UPDATE = Target("<", 5.0)
AUDIENCE = Target("<", 10.0)
DAY_S = 86400
_EVENTS_PER_STATEMENT = 1_000_000
# n-th event: its contact (the sync's formula for ids and emails), type, time.
_GENERATE_EVENTS = """
INSERT INTO marketing_event_log (id, contact_id, contact_key, type, data, occurred_at,
    status, retry_count, max_retries, created_at, updated_at)
SELECT 'bench-event-' || n, md5('bench-contact-' || k)::uuid,
       encode(sha256(convert_to('shopper.' || k || '@sync.example.com', 'UTF8')), 'hex'),
       t, jsonb_build_object('email', 'shopper.' || k || '@sync.example.com', 'payload',
           CASE t WHEN 'placed_order' THEN jsonb_build_object('order', jsonb_build_object(
                    'order_id', 'o-' || n, 'total', jsonb_build_object('units', n % 200)))
                  ELSE jsonb_build_object('product', jsonb_build_object('product_id',
                    'p-' || n % 5000)) END),
       now() - (n % 365) * interval '1 day' - (n % 86400) * interval '1 second',
       'COMPLETED', 0, 6, now(), now()
FROM (SELECT n, 1 + (n * 7919) % CAST(:contacts AS bigint) AS k,
             (ARRAY['product_viewed','product_viewed','product_viewed','added_to_cart',
                    'placed_order'])[1 + n % 5] AS t
      FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n) AS g
"""


def three_conditions() -> sp.SegmentFilter:
    gold = sp.SegmentFilter(
        field=sp.CONTACT_FIELD_LOYALTY_TIER,
        operator=sp.FILTER_OPERATOR_EQUALS,
        value=sp.FilterValue(string_value="gold"),
    )
    consent = sp.SegmentFilter(
        consent=consent_pb2.CONSENT_TYPE_EMAIL,
        operator=sp.FILTER_OPERATOR_EQUALS,
        value=sp.FilterValue(bool_value=True),
    )
    orders = sp.SegmentFilter(
        event=sp.EventCondition(event_type="placed_order"),
        operator=sp.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL,
        value=sp.FilterValue(number_value=2),
    )
    orders.event.within_last.FromSeconds(90 * DAY_S)
    node = sp.SegmentFilter()
    getattr(node, "and").extend([gold, consent, orders])
    return node


async def generate_events(b: Bench, contacts: int, events: int) -> None:
    engine = create_async_engine(b.stack.database_url)
    try:
        async with engine.connect() as conn:
            have = await conn.scalar(
                text("SELECT count(*) FROM marketing_event_log WHERE id LIKE 'bench-event-%'")
            )
        started = time.perf_counter()
        for first in range(int(have or 0) + 1, events + 1, _EVENTS_PER_STATEMENT):
            last = min(events, first + _EVENTS_PER_STATEMENT - 1)
            async with engine.begin() as conn:
                params = {"contacts": contacts, "first": first, "last": last}
                await conn.execute(text(_GENERATE_EVENTS), params)
            b.note(f"events up to {last:,} in {time.perf_counter() - started:.0f} s")
        # As autovacuum would: statistics, and the visibility map that lets
        # whole-segment event conditions read the index alone.
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE marketing_event_log"))
    finally:
        await engine.dispose()


async def rebuild(b: Bench) -> str:
    segment = sp.Segment(
        display_name=f"bench gold regulars {b.tag}",
        kind=sp.Segment.KIND_DYNAMIC,
        filter=three_conditions(),
    )
    started = time.perf_counter()
    reply = await b.service.CreateSegment(
        pb.CreateSegmentRequest(segment=segment, segment_id=f"bench-rebuild-{b.tag}"), timeout=600
    )
    seconds = time.perf_counter() - started
    b.note(f"rebuild: {reply.segment.contact_count:,} members in {seconds:.1f} s")
    b.results.update(
        segment_rebuild_1m_s=seconds, segment_rebuild_members=reply.segment.contact_count
    )
    b.rows.append(
        Row("segment_rebuild_1m_s", seconds, "s", "three conditions, one on events", REBUILD)
    )
    return str(reply.segment.name)


async def preview(b: Bench, rounds: int = 5) -> None:
    request = pb.PreviewSegmentRequest(filter=three_conditions(), sample_size=10)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await b.service.PreviewSegment(request, timeout=600)
        times.append((time.perf_counter() - started) * 1000)
    p99 = percentile(times, 0.99)
    b.note(f"preview: median {percentile(times, 0.5):.0f} ms, p99 {p99:.0f} ms over {rounds}")
    b.results.update(segment_preview_p99_ms=p99)
    b.rows.append(Row("segment_preview_p99_ms", p99, "ms", f"{rounds} counts over 1M", PREVIEW))


async def updates(b: Bench, contacts: int, rate: float = 1000.0, seconds: float = 15.0) -> None:
    """Open loop: change n is due at n / rate. Its time runs from then until a
    drain has evaluated its segments: the answer means the change waits in
    marketing_segment_pending, and a watcher sees its contact leave that
    table (polled every 50 ms: each time is at most a poll late)."""
    rng = random.Random(7)
    total = int(rate * seconds)
    latencies: list[float] = []
    waiting: list[tuple[uuid.UUID, float, float]] = []  # contact, due, answered
    errors = 0
    codes: dict[str, int] = {}
    began = time.perf_counter()

    async def change(n: int) -> None:
        nonlocal errors
        due = began + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        k = rng.randrange(1, contacts + 1)
        contact = pb.UpsertContactRequest()
        contact.contact.email = f"shopper.{k}@sync.example.com"
        contact.contact.loyalty_tier = rng.choice(["gold", "silver", "bronze"])
        try:
            reply = await b.service.UpsertContact(contact, timeout=60)
            contact_id = uuid.UUID(reply.contact.name.removeprefix("contacts/"))
            waiting.append((contact_id, due, time.perf_counter()))
        except Exception as exc:
            errors += 1
            code = exc.code().name if isinstance(exc, grpc.RpcError) else type(exc).__name__
            codes[code] = codes.get(code, 0) + 1

    engine = create_async_engine(b.stack.database_url, pool_size=1)
    offered = asyncio.gather(*(change(n) for n in range(total)))
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            give_up = began + seconds + 120  # a drain that never comes: no figure
            while (not offered.done() or waiting) and time.perf_counter() < give_up:
                asked = time.perf_counter()
                rows = await conn.execute(text("SELECT contact_id FROM marketing_segment_pending"))
                pending = {row[0] for row in rows}
                seen = time.perf_counter()
                still = []
                for contact_id, due, answered in waiting:
                    if answered < asked and contact_id not in pending:
                        latencies.append(seen - due)
                    else:
                        still.append((contact_id, due, answered))
                waiting[:] = still
                await asyncio.sleep(0.05)
        await offered
    finally:
        await engine.dispose()
    if waiting:
        errors += len(waiting)
        codes["NEVER_DRAINED"] = len(waiting)
    elapsed = time.perf_counter() - began
    # A change refused or cancelled never reached its segments: no figure.
    p99 = percentile(latencies, 0.99) if latencies and not errors else float("nan")
    b.note(
        f"updates: {len(latencies):,} of {total:,} offered at {rate:.0f}/s in {elapsed:.1f} s, "
        f"{errors} errors {codes}; change to membership recorded: median "
        f"{percentile(latencies, 0.5) if latencies else float('nan'):.3f} s, "
        f"p99 {percentile(latencies, 0.99) if latencies else float('nan'):.3f} s"
    )
    b.results.update(segment_update_p99_s=p99, segment_update_errors=errors)
    b.rows.append(
        Row("segment_update_p99_s", p99, "s", f"{rate:.0f} changes/s offered, to drained", UPDATE)
    )


async def audience_500k(b: Bench) -> None:
    # order_count is n % 40: below 23 is 57.5 % of the contacts, 89 % of them opted in.
    node = sp.SegmentFilter(
        field=sp.CONTACT_FIELD_ORDER_COUNT,
        operator=sp.FILTER_OPERATOR_LESS_THAN,
        value=sp.FilterValue(number_value=23),
    )
    segment = sp.Segment(
        display_name=f"bench audience {b.tag}", kind=sp.Segment.KIND_DYNAMIC, filter=node
    )
    segment_id = f"bench-audience-{b.tag}"
    created = await b.service.CreateSegment(
        pb.CreateSegmentRequest(segment=segment, segment_id=segment_id), timeout=600
    )
    b.note(f"audience segment: {created.segment.contact_count:,} members")
    db = Database(b.stack.database_url)
    tracemalloc.start()
    started = time.perf_counter()
    recipients = 0
    try:
        async for page in audience(db, segment_id, ConsentType.EMAIL):
            recipients += len(page)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await db.close()
    peak_mb = peak / 1e6
    b.note(f"audience: {recipients:,} recipients in {seconds:.1f} s, traced peak {peak_mb:.1f} MB")
    b.results.update(
        audience_500k_s=seconds, audience_recipients=recipients, audience_peak_traced_mb=peak_mb
    )
    b.rows.append(
        Row(
            "audience_500k_s",
            seconds,
            "s",
            f"{recipients:,} recipients, peak {peak_mb:.0f} MB",
            AUDIENCE,
        )
    )


async def run(b: Bench, contacts: int, events: int) -> None:
    started = time.perf_counter()
    await bench_sync.generate(b.stack.database_url, contacts)
    await generate_events(b, contacts, events)
    ready_s = time.perf_counter() - started
    b.note(f"{contacts:,} contacts and {events:,} events ready in {ready_s:.0f} s")
    await rebuild(b)
    await preview(b)
    await updates(b, contacts)
    await audience_500k(b)
