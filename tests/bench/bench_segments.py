"""Figure 9: segments over a million contacts and ten million events.

The contacts are the full sync's (bench_sync.generate), the events are
generated here once and cached for later runs (`prepare_events`), ten per
contact on average over the last year: 60 % product views, 20 % adds to cart,
20 % orders. Four figures:
- `segment_rebuild_1m_s`: CreateSegment of a three-condition filter (gold
  tier, email consent, at least two orders in the last 90 days), which
  evaluates it over every contact before it answers;
- `segment_preview_p99_ms`: PreviewSegment counts of the same filter;
- `segment_update_p99_s`: contact changes offered at 1,000/s (open loop, nine
  in ten events, one in ten UpsertContact calls), each timed from when it was
  due until its contact's join of a probe segment is recorded (`updates`);
- `audience_500k_s`: an audience of about 500,000 recipients (email consent,
  not suppressed) streamed in pages, with the peak of memory it traced."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import tracemalloc
import uuid
from typing import Any

import asyncpg
import grpc
from marketing.v1 import consent_pb2, event_pb2
from marketing.v1 import segment_pb2 as sp
from marketing.v1 import service_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.segments.audiences import audience
from service.storage.database import Database
from service.storage.models import ConsentType
from tests.bench import bench_sync
from tests.bench.backlog import CACHE_DIR
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
FROM (SELECT n, 1 + (n * 7919) % CAST($1 AS bigint) AS k,
             (ARRAY['product_viewed','product_viewed','product_viewed','added_to_cart',
                    'placed_order'])[1 + n % 5] AS t
      FROM generate_series(CAST($2 AS bigint), CAST($3 AS bigint)) AS n) AS g
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


async def prepare_events(b: Bench, contacts: int, events: int) -> None:
    """The events, from the cache file of an earlier run when there is one
    (`.data/bench/`, keyed by the counts and the event log's columns: a binary
    COPY is only good for the columns it was made with), else generated and
    then cached. Either way the event log's secondary indexes are dropped
    first and built again after: building an index once is several times
    cheaper than maintaining it over ten million inserts."""
    conn = await asyncpg.connect(b.stack.database_url.replace("+asyncpg", ""))
    try:
        have = await conn.fetchval(_HAVE_EVENTS)
        if have >= events:
            return
        shape = await conn.fetchval(_EVENT_LOG_SHAPE)
        digest = hashlib.sha256(shape.encode()).hexdigest()[:10]
        cache = CACHE_DIR / f"segment-events-{contacts}-{events}-{digest}.copy"
        started = time.perf_counter()
        rebuild_indexes = await _drop_secondary_indexes(conn)
        # History loaded before any engagement has nothing to attribute: its
        # orders need not queue their people (the touches that come later
        # queue them, and all their orders are attributed then).
        await conn.execute(_ORDERS_QUEUE_TRIGGER.format("DISABLE"))
        try:
            if cache.exists() and have == 0:
                await conn.copy_to_table("marketing_event_log", source=cache, format="binary")
                b.note(f"events loaded from {cache} in {time.perf_counter() - started:.0f} s")
                await _bring_to_now(b, conn)
            else:
                await _generate_events(b, conn, contacts, have + 1, events, started)
                partial = cache.with_suffix(".partial")
                CACHE_DIR.mkdir(parents=True, exist_ok=True)
                await conn.copy_from_query(_BENCH_EVENTS, output=partial, format="binary")
                partial.rename(cache)
                b.note(f"events cached in {cache}")
        finally:
            await conn.execute(_ORDERS_QUEUE_TRIGGER.format("ENABLE"))
            indexing = time.perf_counter()
            await conn.execute("SET maintenance_work_mem = '512MB'")
            for ddl in rebuild_indexes:
                await conn.execute(ddl)
            b.note(f"event log indexes built in {time.perf_counter() - indexing:.0f} s")
        # As autovacuum would: statistics, and the visibility map that lets
        # whole-segment event conditions read the index alone.
        await conn.execute("VACUUM ANALYZE marketing_event_log")
    finally:
        await conn.close()


_ORDERS_QUEUE_TRIGGER = "ALTER TABLE marketing_event_log {} TRIGGER marketing_attribution_orders"
_HAVE_EVENTS = "SELECT count(*) FROM marketing_event_log WHERE id LIKE 'bench-event-%'"
# The event log's columns and their types: a binary COPY is good for exactly these
# (a migration that leaves the event log alone keeps the cache).
_EVENT_LOG_SHAPE = """
SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
FROM information_schema.columns WHERE table_name = 'marketing_event_log'
"""
_BENCH_EVENTS = "SELECT * FROM marketing_event_log WHERE id LIKE 'bench-event-%'"
# The event log's indexes that back no constraint (the primary key stays).
_SECONDARY_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.tablename = 'marketing_event_log'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                  WHERE c.conindid = (quote_ident(i.schemaname) || '.' ||
                                      quote_ident(i.indexname))::regclass)
"""


async def _bring_to_now(b: Bench, conn: asyncpg.Connection) -> None:
    """Events cached days ago are moved forward by as much: the newest was
    generated at now(), and windows such as "the last 90 days" must find
    what they found then."""
    age = await conn.fetchval(
        "SELECT now() - max(occurred_at) FROM marketing_event_log WHERE id LIKE 'bench-event-%'"
    )
    if age is not None and age.total_seconds() > 3600:
        await conn.execute(
            "UPDATE marketing_event_log SET occurred_at = occurred_at + $1 "
            "WHERE id LIKE 'bench-event-%'",
            age,
        )
        b.note(f"events moved {age} forward")


async def _drop_secondary_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop them; the statements that build them again."""
    rows = await conn.fetch(_SECONDARY_INDEXES)
    for row in rows:
        await conn.execute(f'DROP INDEX "{row["indexname"]}"')
    return [str(row["indexdef"]) for row in rows]


async def _generate_events(
    b: Bench, conn: asyncpg.Connection, contacts: int, start: int, events: int, started: float
) -> None:
    """Events `start`..`events` (a stack that has some already goes on)."""
    for first in range(start, events + 1, _EVENTS_PER_STATEMENT):
        last = min(events, first + _EVENTS_PER_STATEMENT - 1)
        await conn.execute(_GENERATE_EVENTS, contacts, first, last)
        b.note(f"events up to {last:,} in {time.perf_counter() - started:.0f} s")


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
    """Contact changes offered at `rate` for `seconds`, open loop (change n is
    due at n / rate), each to a different contact, each one that makes its
    contact join a probe segment, so its membership being recorded is a row
    in marketing_segment_change. Nine in ten are events (`TrackEvents`, ten a
    call every 10 ms: the path most changes take), one in ten UpsertContact
    calls. A change's time runs from when it was due until a watcher, polling
    the change rows every 50 ms, sees its contact join (at most a poll late):
    through the bus, the event-log writer and the segment refresher for an
    event, the call and the refresher for an upsert."""
    rng = random.Random(7)
    total = min(int(rate * seconds), contacts)  # a contact changes once
    probe = f"bench_probe_{b.tag}"
    tier = f"probe-{b.tag}"
    by_event = await _probe_segment(b, "event", _performed(probe))
    by_upsert = await _probe_segment(b, "upsert", _tier_is(tier))
    chosen = rng.sample(range(1, contacts + 1), total)
    due_of: dict[uuid.UUID, tuple[float, str]] = {}  # contact -> (due, kind)
    latencies: dict[str, list[float]] = {"event": [], "upsert": []}
    codes: dict[str, int] = {}
    said: dict[str, str] = {}  # the first error's details, per code
    began = time.perf_counter() + 1.0  # the probe segments are in place

    def failed(exc: Exception, count: int) -> None:
        code = exc.code().name if isinstance(exc, grpc.RpcError) else type(exc).__name__
        codes[code] = codes.get(code, 0) + count
        said.setdefault(code, str(exc.details()) if isinstance(exc, grpc.RpcError) else str(exc))

    async def upsert(n: int) -> None:
        await _until(began + n / rate)
        contact = pb.UpsertContactRequest()
        contact.contact.email = email(chosen[n])
        contact.contact.loyalty_tier = tier
        try:
            await b.service.UpsertContact(contact, timeout=60)
        except Exception as exc:
            failed(exc, 1)
            due_of.pop(_contact_id(chosen[n]), None)  # counted once, as refused

    async def events(first: int, last: int) -> None:
        await _until(began + first / rate)
        request = pb.TrackEventsRequest(
            events=[
                event_pb2.Event(email=email(chosen[n]), custom=event_pb2.CustomEvent(name=probe))
                for n in range(first, last)
            ]
        )
        try:
            await b.service.TrackEvents(request, timeout=60)
        except Exception as exc:
            failed(exc, last - first)
            for n in range(first, last):
                due_of.pop(_contact_id(chosen[n]), None)

    calls = []
    for first in range(0, total, 10):
        upserted = first  # one in ten: the first of each ten
        due_of[_contact_id(chosen[upserted])] = (began + upserted / rate, "upsert")
        calls.append(upsert(upserted))
        for n in range(first + 1, min(first + 10, total)):
            due_of[_contact_id(chosen[n])] = (began + n / rate, "event")
        calls.append(events(first + 1, min(first + 10, total)))
    offered = asyncio.gather(*calls)
    await _watch_joins(b, [by_event, by_upsert], due_of, latencies, offered, seconds)
    await offered
    everything = [*latencies["event"], *latencies["upsert"]]
    errors = sum(codes.values()) + len(due_of)
    if due_of:
        codes["NEVER_JOINED"] = len(due_of)
    # A change refused, or never recorded, reached no segment: no figure.
    p99 = percentile(everything, 0.99) if everything and not errors else float("nan")
    b.note(
        f"updates: {len(everything):,} of {total:,} changes recorded, offered at {rate:.0f}/s; "
        f"{errors} errors {codes} {said}; change to membership recorded: "
        + "; ".join(
            f"{kind} p50 {_p(times, 0.5)} s, p99 {_p(times, 0.99)} s ({len(times):,})"
            for kind, times in latencies.items()
        )
    )
    b.results.update(
        segment_update_p99_s=p99,
        segment_update_errors=errors,
        segment_update_event_p99_s=percentile(latencies["event"], 0.99),
        segment_update_upsert_p99_s=percentile(latencies["upsert"], 0.99),
    )
    b.rows.append(
        Row(
            "segment_update_p99_s",
            p99,
            "s",
            f"{rate:.0f} changes/s offered (9/10 events)",
            UPDATE,
        )
    )


def email(k: int) -> str:
    """The full sync's k-th shopper (bench_sync's formula)."""
    return f"shopper.{k}@sync.example.com"


def _contact_id(k: int) -> uuid.UUID:
    """The sync's contact ids: md5('bench-contact-' || k)::uuid."""
    return uuid.UUID(hashlib.md5(f"bench-contact-{k}".encode()).hexdigest())


def _p(times: list[float], q: float) -> str:
    return f"{percentile(times, q):.3f}" if times else "n/a"


async def _until(due: float) -> None:
    await asyncio.sleep(max(0.0, due - time.perf_counter()))


def _performed(event_type: str) -> sp.SegmentFilter:
    return sp.SegmentFilter(
        event=sp.EventCondition(event_type=event_type),
        operator=sp.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL,
        value=sp.FilterValue(number_value=1),
    )


def _tier_is(tier: str) -> sp.SegmentFilter:
    return sp.SegmentFilter(
        field=sp.CONTACT_FIELD_LOYALTY_TIER,
        operator=sp.FILTER_OPERATOR_EQUALS,
        value=sp.FilterValue(string_value=tier),
    )


async def _probe_segment(b: Bench, kind: str, node: sp.SegmentFilter) -> str:
    segment_id = f"bench-probe-{kind}-{b.tag}"
    segment = sp.Segment(
        display_name=f"bench probe {kind} {b.tag}", kind=sp.Segment.KIND_DYNAMIC, filter=node
    )
    request = pb.CreateSegmentRequest(segment=segment, segment_id=segment_id)
    await b.service.CreateSegment(request, timeout=600)
    return segment_id


async def _watch_joins(
    b: Bench,
    segment_ids: list[str],
    due_of: dict[uuid.UUID, tuple[float, str]],
    latencies: dict[str, list[float]],
    offered: asyncio.Future[Any],
    seconds: float,
) -> None:
    """Take each contact's join off `due_of` as its change row appears."""
    engine = create_async_engine(b.stack.database_url, pool_size=1)
    last_id = 0
    give_up = time.perf_counter() + seconds + 120  # joins that never come: errors
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            while (not offered.done() or due_of) and time.perf_counter() < give_up:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT id, contact_id FROM marketing_segment_change "
                            "WHERE segment_id = ANY(:segments) AND id > :last AND joined "
                            "ORDER BY id"
                        ),
                        {"segments": segment_ids, "last": last_id},
                    )
                ).all()
                seen = time.perf_counter()
                for row_id, contact_id in rows:
                    last_id = max(last_id, row_id)
                    due = due_of.pop(contact_id, None)
                    if due is not None:
                        latencies[due[1]].append(seen - due[0])
                await asyncio.sleep(0.05)
        if due_of:
            async with engine.connect() as conn:
                left = await conn.scalar(text("SELECT count(*) FROM marketing_segment_pending"))
                b.note(f"  {len(due_of):,} changes never joined; {left:,} contacts still pending")
                activity = await conn.execute(
                    text(
                        "SELECT pid, state, wait_event_type, wait_event, left(query, 160) "
                        "FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                )
                for row in activity:
                    b.note(f"  session {tuple(row)}")
    finally:
        await engine.dispose()


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
    await prepare_events(b, contacts, events)
    ready_s = time.perf_counter() - started
    b.note(f"{contacts:,} contacts and {events:,} events ready in {ready_s:.0f} s")
    await rebuild(b)
    await preview(b)
    await updates(b, contacts)
    await audience_500k(b)
