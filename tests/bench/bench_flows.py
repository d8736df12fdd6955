"""Figure 10: durable timers, abandoned carts and a back-in-stock waitlist.

- `timer_lateness_p99_s`: 1,000,000 timers pending, of which 1,000 fall due
  every second for `BENCH_TIMER_SECONDS` (carts going inactive: each firing
  records a cart_abandoned event and enrols its person in cart recovery);
  the rest lie weeks ahead. Lateness is each firing's time (the event log
  row's creation, the flow worker's clock) minus its due time (the event's
  time), for every one of them.
- `cart_abandon_throughput`: a backlog of carts all due at once (after an
  outage, say), abandoned and enrolled per second until none is left.
- `waitlist_100k_notify_s`: 100,000 people waiting for one product, one
  NotifyBackInStock, until the Klaviyo sandbox (limits on, one dispatcher
  replica) holds every one's back-in-stock flow event; next to the provider's
  bound for that many events (bulk jobs of 1,000 at 10/s and 150/min), and
  `waitlist_100k_ratio` = bound / measured. The work left on the bus by the
  parts before is delivered to the unlimited sandbox first; then the database
  is vacuumed and analysed, and the limited Klaviyo sandbox started again (a
  new account, without the profiles the phases before left it).

The bench contacts (`flowbench.<n>@bench.example.com`) are made once per
stack and reused; timers are made by one INSERT ... SELECT per run."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing.v1 import event_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime import kinds, topology
from marketing_runtime.consumer_loop import FETCH_WAIT_S
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dispatcher.providers.base import CREATE_EVENTS, Limits
from dispatcher.sandbox.klaviyo.catalogue import BULK_EVENTS_PATH
from tests.bench import database
from tests.bench.bench_sync import cpu_groups, least_seconds
from tests.bench.context import Bench
from tests.bench.cpus import cpu_by_pid, cpu_since
from tests.bench.report import Row, Target
from tests.bench.sandbox_api import SandboxApi
from tests.bench.stamp_ages import stamp_ages
from tests.bench.stats import percentile

LATENESS = Target("<", 1.0)
NOTIFY = Target("<", 3600.0)
EVENTS_JOBS = f"POST {BULK_EVENTS_PATH}"  # the sandbox's name of the endpoint
RATIO = Target(">=", 0.9)
PENDING_TIMERS = 1_000_000
DUE_PER_S = 1_000
LEAD_S = 5.0  # the first due timer, after the set-up committed
POLL_S = 0.5
FAST_POLL_S = 0.1  # cheap counts (a restock's end, the provider's, timers by index): often
CLOSE_POLL_S = 0.01  # the provider's count near the end of a restock
CLOSE_READ_EVENTS = 5_000  # events left (half a second of calls) when it begins

_CONTACTS = """
INSERT INTO marketing_contact (id, email, first_name, custom_properties, email_opt_in,
    sms_opt_in, push_opt_in, created_at, updated_at)
SELECT md5('flowbench-' || n)::uuid, 'flowbench.' || n || '@bench.example.com', 'Ada', '{}',
       true, false, false, now(), now()
FROM generate_series(1, :contacts) AS n
ON CONFLICT (email) DO NOTHING
"""
# Carts due from `start`, `per_s` a second, each of its own contact (round robin).
_CARTS = """
INSERT INTO marketing_timer (kind, key, contact_id, due_at, base_at, payload)
SELECT 'cart', md5('flowbench-' || (1 + n % :contacts))::uuid || ':' || :tag || '-' || n,
       md5('flowbench-' || (1 + n % :contacts))::uuid,
       CAST(:start AS timestamptz) + (n / :per_s) * INTERVAL '1 second',
       CAST(:start AS timestamptz) + (n / :per_s) * INTERVAL '1 second' - INTERVAL '1 hour',
       jsonb_build_object('cart', jsonb_build_object('cart_id', :tag || '-' || n,
           'items', jsonb_build_array(jsonb_build_object('product_id', 'mug-' || n % 500,
               'quantity', 1, 'url', 'https://shop.example.com/p/mug-' || n % 500))))
FROM generate_series(0, :carts - 1) AS n
"""
# Enrolments' ends, weeks ahead: the pending timers the due ones are among.
_FAR = """
INSERT INTO marketing_timer (kind, key, contact_id, due_at, base_at, payload)
SELECT 'enrolment_end', :tag || '-far-' || n,
       md5('flowbench-' || (1 + n % :contacts))::uuid,
       now() + INTERVAL '20 days' + n * INTERVAL '1 second', now(), '{}'
FROM generate_series(1, :far) AS n
"""
_SUBSCRIPTIONS = """
INSERT INTO marketing_back_in_stock_subscription (id, contact_id, product_id, variant_id,
    state, source, created_at)
SELECT gen_random_uuid(), md5('flowbench-' || n)::uuid, :product, '', 'WAITING', 'bench',
       now() + n * INTERVAL '1 microsecond'
FROM generate_series(1, :waiting) AS n
"""
_LATENESS = """
SELECT extract(epoch FROM created_at - occurred_at) FROM marketing_event_log
WHERE type = 'cart_abandoned' AND id LIKE 'cart_abandoned:%' AND id LIKE :pattern
"""


async def run(
    b: Bench, limits: Limits, contacts: int, due_seconds: int, backlog: int, waitlist: int
) -> None:
    # Its polls planned for each run, as the service's are (service/storage/fresh_plans.py).
    custom_plans = {"server_settings": {"plan_cache_mode": "force_custom_plan"}}
    engine = create_async_engine(b.stack.database_url, connect_args=custom_plans)
    try:
        await _contacts(engine, max(contacts, waitlist))
        await _lateness(b, engine, contacts, due_seconds)
        await _backlog(b, engine, contacts, backlog)
        await _waitlist(b, engine, limits, waitlist)
    finally:
        await engine.dispose()


async def _contacts(engine: AsyncEngine, contacts: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(_CONTACTS), {"contacts": contacts})


async def _lateness(b: Bench, engine: AsyncEngine, contacts: int, due_seconds: int) -> None:
    tag = f"late{b.tag}"
    carts = DUE_PER_S * due_seconds
    started = time.perf_counter()
    async with engine.begin() as connection:
        await connection.execute(
            text(_FAR), {"tag": tag, "contacts": contacts, "far": PENDING_TIMERS - carts}
        )
    # The due ones last, in a transaction of their own, counted from its start:
    # none falls due before it commits (a second or so ahead).
    async with engine.begin() as connection:
        start = await connection.scalar(text(f"SELECT now() + INTERVAL '{LEAD_S} seconds'"))
        await connection.execute(
            text(_CARTS),
            {"tag": tag, "contacts": contacts, "start": start, "per_s": DUE_PER_S, "carts": carts},
        )
    made_s = time.perf_counter() - started
    b.note(f"{PENDING_TIMERS:,} timers pending ({carts:,} carts due), made in {made_s:.1f} s")
    last_due = start + timedelta(seconds=carts // DUE_PER_S)
    await _until_fired(engine, tag, last_due, timeout_s=due_seconds + 120)
    late = await _lateness_of(engine, tag)
    p50, p99 = percentile(late, 50), percentile(late, 99)
    b.note(
        f"{len(late):,} carts abandoned at {DUE_PER_S:,}/s among {PENDING_TIMERS:,} pending: "
        f"lateness p50 {p50:.3f} s, p99 {p99:.3f} s, max {max(late):.3f} s"
    )
    async with engine.begin() as connection:  # the far timers are this run's only
        await connection.execute(
            text("DELETE FROM marketing_timer WHERE kind = 'enrolment_end' AND key LIKE :far"),
            {"far": f"{tag}-far-%"},
        )
    b.results.update(
        timer_lateness_p50_s=p50,
        timer_lateness_p99_s=p99,
        timer_lateness_max_s=max(late),
        timer_fired=len(late),
        timer_pending=PENDING_TIMERS,
    )
    b.rows.append(
        Row(
            "timer_lateness_p99_s",
            p99,
            "s",
            f"{len(late):,} due at {DUE_PER_S:,}/s, {PENDING_TIMERS:,} pending",
            LATENESS,
        )
    )


async def _backlog(b: Bench, engine: AsyncEngine, contacts: int, carts: int) -> None:
    tag = f"back{b.tag}"
    async with engine.begin() as connection:
        start = await connection.scalar(text("SELECT now() - INTERVAL '1 minute'"))
        await connection.execute(
            text(_CARTS),
            {"tag": tag, "contacts": contacts, "start": start, "per_s": carts, "carts": carts},
        )
    began = time.perf_counter()
    await _until_fired(engine, tag, start, timeout_s=600)
    seconds = time.perf_counter() - began
    enrolled = await _scalar(
        engine,
        "SELECT count(*) FROM marketing_enrolment WHERE flow_id = 'cart-recovery'"
        " AND entry_key LIKE :pattern AND state = 'ACTIVE'",
        pattern=f"{tag}-%",
    )
    rate = carts / seconds
    b.note(f"{carts:,} overdue carts abandoned in {seconds:.1f} s: {rate:,.0f}/s")
    b.note(f"{enrolled:,} of them enrolled in cart recovery")
    b.results.update(cart_abandon_throughput=rate, cart_abandon_enrolled=enrolled)
    b.rows.append(
        Row(
            "cart_abandon_throughput",
            rate,
            "carts/s",
            f"{carts:,} overdue; next to timer_lateness_p99_s's {DUE_PER_S:,}/s",
        )
    )


async def _waitlist(b: Bench, engine: AsyncEngine, limits: Limits, waiting: int) -> None:
    await _drain_leftovers(b)
    product = f"bench-{b.tag}"
    async with engine.begin() as connection:
        await connection.execute(text(_SUBSCRIPTIONS), {"product": product, "waiting": waiting})
    # Everything vacuumed and analysed, as autovacuum would have by then: the new
    # waitlist, and the carts' events, which it otherwise reached mid-measurement.
    vacuumed_s = await database.vacuum_database(b.stack.database_url)
    b.note(f"database vacuumed and analysed in {vacuumed_s:.1f} s")
    calls = math.ceil(waiting / limits.create_events.max_items)
    windows = tuple(w for bucket in limits.rates[CREATE_EVENTS] for w in bucket.windows)
    bound = least_seconds(calls, windows)
    sandbox = b.provider_sandboxes["klaviyo"]
    await asyncio.to_thread(b.stack.fresh_limited_sandbox, "klaviyo")
    replica = b.stack.start_replicas(1, "klaviyo", metrics=True)[0]
    await asyncio.to_thread(b.stack.wait_replicas_ready)
    # Measured as a dispatcher that has run a while delivers: holding the enrolments'
    # lease, which a new replica takes a moment after it starts, and fetching (a loop
    # that found no lease looks again FETCH_WAIT_S later: ordered loops keep the default).
    await asyncio.to_thread(replica.wait_for_log, f"holds the lease {topology.ENROLMENTS_LEASE}")
    await asyncio.sleep(FETCH_WAIT_S)
    cpu_before = {name: cpu_by_pid(pids) for name, pids in cpu_groups(b, replica.pid).items()}
    # Two readings of one moment: the monotonic one times the figure (as `_until`
    # does), the wall one places it among PostgreSQL's and the sandbox's stamps.
    began = time.perf_counter()
    began_at = datetime.now(UTC)
    product_message = event_pb2.Product(
        product_id=product, title="Stoneware mug", url=f"https://shop.example.com/p/{product}"
    )
    reply = await b.service.NotifyBackInStock(
        pb.NotifyBackInStockRequest(product_id=product, product=product_message), timeout=300
    )
    picked_s = time.perf_counter() - began
    restock_id = reply.restock.name.removeprefix("restocks/")
    notified_at = await _until(
        lambda: _finished(engine, restock_id), 1, timeout_s=b.cfg.timeout_s * 5, poll_s=FAST_POLL_S
    )
    held_then = await sandbox.events_held()
    # The last calls' arrival read closely: at FAST_POLL_S, the poll alone would add
    # half of it to the figure on average (and at CLOSE_POLL_S throughout, a
    # thousand counts would load the sandbox, which shares the cores).
    await _until(
        sandbox.events_held,
        waiting - CLOSE_READ_EVENTS,
        timeout_s=b.cfg.timeout_s * 5,
        poll_s=FAST_POLL_S,
    )
    held_at = await _until(
        sandbox.events_held, waiting, timeout_s=b.cfg.timeout_s * 5, poll_s=CLOSE_POLL_S
    )
    seconds = held_at - began
    groups = cpu_groups(b, replica.pid)  # PostgreSQL's processes as they are now
    cpu = {name: round(cpu_since(cpu_before[name], pids), 1) for name, pids in groups.items()}
    ages = await stamp_ages(b.stack.replica_metrics[0])
    b.stack.stop_replicas()
    ratio = bound / seconds
    b.note(
        f"{reply.restock.picked:,} waiting picked in {picked_s:.1f} s, all notified (ours) at "
        f"{notified_at - began:.1f} s ({held_then:,} held by the provider then), all held by "
        f"the provider at {seconds:.1f} s; "
        f"provider bound {bound:.1f} s for {calls} bulk calls -> ratio {ratio:.2f}"
    )
    b.note(f"CPU seconds by process: {cpu}")
    b.note(f"requests after their budget stamp: {ages}")
    held_until = began_at + timedelta(seconds=seconds)
    autovacuumed = await database.autovacuumed_between(b.stack.database_url, began_at, held_until)
    b.note(f"autovacuum meanwhile: {', '.join(autovacuumed) or 'none'}")
    await _note_first_message(b, engine, began_at.timestamp())
    await _note_calls(b, sandbox, began_at.timestamp(), limits.create_events.max_items)
    b.results.update(
        waitlist_100k_notify_s=seconds,
        waitlist_100k_ratio=ratio,
        waitlist_100k_bound_s=bound,
        waitlist_100k_decided_s=notified_at - began,
        waitlist_picked=reply.restock.picked,
        waitlist_cpu_s_by_process=cpu,
        waitlist_stamp_ages=ages,
        waitlist_autovacuumed=autovacuumed,
        waitlist_vacuum_s=vacuumed_s,
    )
    b.rows += [
        Row("waitlist_100k_notify_s", seconds, "s", f"provider bound {bound:.1f} s", NOTIFY),
        Row("waitlist_100k_ratio", ratio, "", "bound / measured", RATIO),
    ]


async def _note_first_message(b: Bench, engine: AsyncEngine, began_wall: float) -> None:
    """When the restock's first message of beginnings was decided (its batch's time),
    and when the relay published the first twelve: the start of the pipeline, before
    the first calls."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT extract(epoch FROM created_at), extract(epoch FROM published_at)"
                    " FROM marketing_outbox WHERE kind = :kind"
                    " AND created_at >= to_timestamp(:began) ORDER BY published_at"
                ),
                {"kind": kinds.name(bus_pb2.KIND_ENROLMENTS_BEGUN), "began": began_wall},
            )
        ).all()
    decided = [float(d) for d, _ in rows]
    published = [float(p) - began_wall for _, p in rows if p is not None]
    if decided and published:
        b.note(
            f"first message of beginnings: its batch began at {min(decided) - began_wall:.2f} s;"
            f" the first 12 published at (s): {', '.join(f'{p:.2f}' for p in published[:12])}"
        )


async def _note_calls(b: Bench, sandbox: SandboxApi, began_wall: float, per_call: int) -> None:
    """When the provider's bulk calls came: how many in each second of the clock (the
    provider's windows; the restock's second is 0) and how far into its second the
    restock came; the first ones, any not full, any other calls, and refusals."""
    recorded = await sandbox.requests()
    jobs = [r for r in recorded if r["endpoint"] == EVENTS_JOBS]
    stamps = sorted(r["received_s"] for r in jobs)
    others = Counter(r["endpoint"] for r in recorded if r["endpoint"] != EVENTS_JOBS)
    refused = await sandbox.throttled_total()
    sizes = [(round(r["received_s"] - began_wall, 2), len(_entries(r["body"]))) for r in jobs]
    part_full = [(at, size) for at, size in sizes if size != per_call]
    per_second = Counter(int(at) - int(began_wall) for at in stamps)
    seconds = range(min(per_second, default=0), max(per_second, default=-1) + 1)
    first = ", ".join(f"{at - began_wall:.2f}" for at in stamps[:12])
    b.note(
        f"bulk calls: {len(stamps)}, {refused} refused (429); the restock came "
        f"{began_wall % 1:.2f} s into a second of the clock; calls per second of the clock "
        f"from the restock's: {' '.join(f'{s}:{per_second[s]}' for s in seconds)}; the first "
        f"12 at (s from the restock): {first}; calls of other than {per_call:,} profiles "
        f"(at s, profiles): {part_full}; other calls: {dict(others)}"
    )


def _entries(body: Any) -> list[Any]:
    """A bulk job's profiles (each with its events)."""
    entries: list[Any] = body["data"]["attributes"]["events-bulk-create"]["data"]
    return entries


async def _drain_leftovers(b: Bench) -> None:
    """What the parts before left on the bus goes to the unlimited sandbox."""
    b.stack.start_dispatcher()
    await asyncio.to_thread(b.stack.wait_dispatcher_ready)
    await b.settle(dispatcher=True, label="the timers' events and enrolments")
    b.stack.stop_dispatcher()


async def _finished(engine: AsyncEngine, restock_id: str) -> int:
    """1 once the restock is finished: nobody it answers waits (each notified or
    skipped). One row, where counting the notified would read the whole
    waitlist on every poll, beside the work measured."""
    return await _scalar(
        engine,
        "SELECT count(*) FROM marketing_restock WHERE id = CAST(:id AS uuid)"
        " AND finished_at IS NOT NULL",
        id=restock_id,
    )


async def _until(
    count: Callable[[], Awaitable[int]], wanted: int, *, timeout_s: float, poll_s: float = POLL_S
) -> float:
    """When `count()` first reached `wanted` (perf_counter)."""
    deadline = time.monotonic() + timeout_s
    while (found := await count()) < wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{found:,} of {wanted:,} after {timeout_s:.0f} s")
        await asyncio.sleep(poll_s)
    return time.perf_counter()


async def _until_fired(
    engine: AsyncEngine, tag: str, last_due: datetime, *, timeout_s: float
) -> None:
    """Until every cart timer of `tag` (due by `last_due`) has fired. Read often
    and through the index on the due time: a backlog of 2,000 fires in about a
    second, and counting the million pending timers took a good part of one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = await _scalar(
            engine,
            "SELECT count(*) FROM marketing_timer WHERE due_at <= :last_due AND kind = 'cart'"
            " AND key LIKE :pattern",
            last_due=last_due,
            pattern=f"%:{tag}-%",
        )
        if left == 0:
            return
        await asyncio.sleep(FAST_POLL_S)
    raise TimeoutError(f"carts of {tag} still pending after {timeout_s:.0f} s")


async def _lateness_of(engine: AsyncEngine, tag: str) -> list[float]:
    async with engine.begin() as connection:
        rows = await connection.execute(text(_LATENESS), {"pattern": f"%:{tag}-%"})
        return [float(r[0]) for r in rows]


async def _scalar(engine: AsyncEngine, query: str, **params: object) -> int:
    async with engine.begin() as connection:
        return int(await connection.scalar(text(query), params) or 0)
