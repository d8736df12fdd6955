"""Figure 10: durable timers, abandoned carts and a back-in-stock waitlist.

- `timer_lateness_p99_s`: 1,000,000 timers pending, of which 1,000 fall due
  every second for `BENCH_TIMER_SECONDS` (carts going inactive: each firing
  records a cart_abandoned event and enrols its person in cart recovery);
  the rest lie weeks ahead. Lateness is each firing's time (the event log
  row's creation, the flow worker's clock) minus its due time (the event's
  time), for every one of them.
- `cart_abandon_throughput`: a backlog of carts all due at once (after an
  outage, say), abandoned and enrolled per second until none is left.
- `waitlist_100k_notify_s` (with the dispatcher on the Klaviyo sandbox with
  its limits): see bench_waitlist.

The bench contacts (`flowbench.<n>@bench.example.com`) are made once per
stack and reused; timers are made by one INSERT ... SELECT per run."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.stats import percentile

LATENESS = Target("<", 1.0)
PENDING_TIMERS = 1_000_000
DUE_PER_S = 1_000
LEAD_S = 5.0  # the first due timer, after the set-up committed
POLL_S = 0.5

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
_LATENESS = """
SELECT extract(epoch FROM created_at - occurred_at) FROM marketing_event_log
WHERE type = 'cart_abandoned' AND id LIKE 'cart_abandoned:%' AND id LIKE :pattern
"""


async def run(b: Bench, contacts: int, due_seconds: int, backlog: int) -> None:
    engine = create_async_engine(b.stack.database_url)
    try:
        await _contacts(engine, contacts)
        await _lateness(b, engine, contacts, due_seconds)
        await _backlog(b, engine, contacts, backlog)
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
    await _until_fired(engine, tag, timeout_s=due_seconds + 120)
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
    await _until_fired(engine, tag, timeout_s=600)
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


async def _until_fired(engine: AsyncEngine, tag: str, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = await _scalar(
            engine,
            "SELECT count(*) FROM marketing_timer WHERE kind = 'cart' AND key LIKE :pattern",
            pattern=f"%:{tag}-%",
        )
        if left == 0:
            return
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"carts of {tag} still pending after {timeout_s:.0f} s")


async def _lateness_of(engine: AsyncEngine, tag: str) -> list[float]:
    async with engine.begin() as connection:
        rows = await connection.execute(text(_LATENESS), {"pattern": f"%:{tag}-%"})
        return [float(r[0]) for r in rows]


async def _scalar(engine: AsyncEngine, query: str, **params: object) -> int:
    async with engine.begin() as connection:
        return int(await connection.scalar(text(query), params) or 0)
