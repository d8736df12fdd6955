"""Figure 12: one-click unsubscribe (RFC 8058) under load.

- `one_click_unsubscribe_p99_ms`: `POST List-Unsubscribe=One-Click` to the service's
  preference pages at `BENCH_ONE_CLICK_RATE` (200) a second, open loop, for
  `BENCH_ONE_CLICK_SECONDS` (30), each to a different subscriber's link: each
  answer's time from when its request was due. Target < 100 ms.
- `one_click_provider_p99_s`: each unsubscribe's time from its answer to the Klaviyo
  sandbox (limits on, one dispatcher replica) receiving a consent call that names the
  address. Target < 60 s.
- `one_click_applied_p99_s`: each click's time from when it was recorded to when the
  one-click worker applied it (its consent record's recorded_at less its consent time,
  which is the click's). Within the README's bound, 1 s.

The subscribers (`oneclick.<n>.<tag>@bench.example.com`, email consent on record) are
made by one INSERT ... SELECT per run; the first WARM_UP of them unsubscribe at the same
rate before the measured ones (connections, the database pool), and are not counted.
The POSTs go out on CONNECTIONS keep-alive connections (tests.bench.open_loop_http: httpx
cost more CPU a request than the page it measured)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.preferences.links import PreferenceLinks
from tests.bench.context import Bench
from tests.bench.open_loop_http import post_open_loop
from tests.bench.report import Row, Target
from tests.bench.sandbox_api import SandboxApi, wall
from tests.bench.stats import percentile

ANSWER_P99 = Target("<", 100.0)
PROVIDER_P99 = Target("<", 60.0)
APPLIED_P99 = Target("<", 1.0)
LINK_AGE_S = 86_400
WARM_UP = 200  # requests before the measured ones (connections, the pool, caches)
POLL_S = 2.0
CONNECTIONS = 64  # the client's connections: enough that 200/s never waits for one
ONE_CLICK_FORM = b"List-Unsubscribe=One-Click"

_SUBSCRIBERS = """
WITH made AS (
    INSERT INTO marketing_contact (id, email, first_name, custom_properties, email_opt_in,
        sms_opt_in, push_opt_in, created_at, updated_at)
    SELECT md5(:tag || '-' || n)::uuid, 'oneclick.' || n || '.' || :tag || '@bench.example.com',
           'Ada', '{}', true, false, false, now(), now()
    FROM generate_series(1, :people) AS n
    RETURNING id
)
INSERT INTO marketing_consent (contact_id, type, granted, source, consent_time, recorded_at)
SELECT id, 'EMAIL', true, 'bench', now(), now() FROM made
RETURNING contact_id
"""
# How long each measured click waited in the queue: its withdrawal counts from the click
# (consent_time) and was written when the worker applied it (recorded_at).
_APPLIED = """
SELECT extract(epoch FROM c.recorded_at - c.consent_time)
FROM marketing_consent c JOIN marketing_contact p ON p.id = c.contact_id
WHERE c.source = 'one_click' AND p.email = ANY(:emails)
"""


async def run(b: Bench, rate: float, seconds: float) -> None:
    people = int(rate * seconds) + WARM_UP
    tag = f"oc{b.tag}"
    ids = await _subscribers(b, tag, people)
    links = PreferenceLinks(b.stack.preferences_key, b.stack.preferences_url, LINK_AGE_S)
    sandbox = b.provider_sandboxes["klaviyo"]
    await sandbox.reset()
    b.stack.start_replicas(1, "klaviyo")
    await asyncio.to_thread(b.stack.wait_replicas_ready)
    urls = [links.url_for(i) for i in ids]
    emails = [_email(tag, n) for n in range(1, people + 1)]
    await _open_loop(urls[:WARM_UP], emails[:WARM_UP], rate)
    answers, answered = await _open_loop(urls[WARM_UP:], emails[WARM_UP:], rate)
    receipts = await _receipts(b, sandbox, tag, answered)
    b.stack.stop_replicas()
    applied = await _applied_lags(b, list(answered))
    applied_p99 = percentile(applied, 99)
    told = [receipts.get(e, float("inf")) - t for e, t in answered.items()]
    missing = sum(lag == float("inf") for lag in told)
    p99_ms, p50_ms = percentile(answers, 99) * 1000, percentile(answers, 50) * 1000
    told_p99 = percentile(told, 99)
    b.note(
        f"{len(answers):,} one-click unsubscribes at {rate:g}/s: answers p50 {p50_ms:.1f} ms, "
        f"p99 {p99_ms:.1f} ms; applied p99 {applied_p99:.2f} s; the provider told p99 "
        f"{told_p99:.1f} s, {missing} never"
    )
    b.results.update(
        one_click_unsubscribe_p99_ms=p99_ms,
        one_click_unsubscribe_p50_ms=p50_ms,
        one_click_provider_p99_s=told_p99,
        one_click_provider_p50_s=percentile(told, 50),
        one_click_applied_p99_s=applied_p99,
        one_click_applied_p50_s=percentile(applied, 50),
        one_click_requests=len(answers),
        one_click_not_received=missing,
    )
    b.rows += [
        Row("one_click_unsubscribe_p99_ms", p99_ms, "ms", f"{rate:g}/s open loop", ANSWER_P99),
        Row("one_click_applied_p99_s", applied_p99, "s", "click -> applied", APPLIED_P99),
        Row("one_click_provider_p99_s", told_p99, "s", "answer -> Klaviyo sandbox", PROVIDER_P99),
    ]


def _email(tag: str, n: int) -> str:
    return f"oneclick.{n}.{tag}@bench.example.com"


async def _subscribers(b: Bench, tag: str, people: int) -> list[uuid.UUID]:
    """The subscribers' contact ids, in the order of their n (1..people)."""
    engine = create_async_engine(b.stack.database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(_SUBSCRIBERS), {"tag": tag, "people": people})
    finally:
        await engine.dispose()
    # As PostgreSQL made them: md5(tag-n) read as a uuid.
    return [
        uuid.UUID(hex=hashlib.md5(f"{tag}-{n}".encode()).hexdigest()) for n in range(1, people + 1)
    ]


async def _applied_lags(b: Bench, emails: list[str]) -> list[float]:
    """Each applied click's seconds from click to application (every click is applied
    by the time the provider was told)."""
    engine = create_async_engine(b.stack.database_url)
    try:
        async with engine.connect() as connection:
            lags = await connection.scalars(text(_APPLIED), {"emails": emails})
            return [float(lag) for lag in lags]
    finally:
        await engine.dispose()


async def _open_loop(
    urls: list[str], emails: list[str], rate: float
) -> tuple[list[float], dict[str, float]]:
    """Each POST at its due time whatever the answers before it; (each answer's time
    from its due time, email -> wall time of its answer)."""
    answers = await post_open_loop(urls, ONE_CLICK_FORM, rate, CONNECTIONS)
    return [a.late_s for a in answers], {emails[a.index]: a.wall for a in answers}


async def _receipts(
    b: Bench, sandbox: SandboxApi, tag: str, answered: dict[str, float]
) -> dict[str, float]:
    """When the sandbox first received a consent call naming each address, waiting up
    to the phase's timeout for all of them."""
    address = re.compile(rf"oneclick\.[0-9]+\.{re.escape(tag)}@bench\.example\.com")
    deadline = time.monotonic() + b.cfg.timeout_s
    while True:
        seen: dict[str, float] = {}
        for path in sandbox.compliance_paths:
            for request in await sandbox.requests(path=path):
                at = wall(request["received_at"])
                for email in address.findall(request.get("raw_body") or str(request["body"])):
                    if email in answered:  # not the warm-up's
                        seen[email] = min(at, seen.get(email, at))
        if len(seen) >= len(answered) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(POLL_S)
