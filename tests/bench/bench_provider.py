"""Figures 6 and 7: delivery at the provider's real limits.

The provider sandbox runs with its rate limits on. A backlog of events sits on
the work stream; N dispatcher replicas drain it, and what the sandbox accepts in
`provider_seconds` of its own whole minutes (Klaviyo's steady limit is per
minute; they begin after a warm-up) is measured. Efficiency is that divided by
what the bulk endpoint's limits allow in that time (`steady bound` = its
tightest window, calls per second, times events per call). 429s are counted
before and during the measured minutes; by then the shared budget must have
made them impossible. With 3 replicas, shoppers
unsubscribe meanwhile: each one's time from the RPC's reply to the provider
receiving the call that carries it is the figure a compliance officer cares
about while a million events wait."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from marketing.v1 import service_pb2 as pb

from dispatcher.providers.base import CREATE_EVENTS, Limits
from tests.bench import backlog
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.sandbox_api import SandboxApi, wall
from tests.bench.stats import percentile

EFFICIENCY = Target(">=", 0.95)
NO_429 = Target("==", 0)
UNSUBSCRIBE_P99 = Target("<", 5.0)


def steady_bound(limits: Limits) -> float:
    """Events per second the events endpoint allows in the long run."""
    windows = [w for bucket in limits.rates[CREATE_EVENTS] for w in bucket.windows]
    calls_per_s = min(w.calls / w.seconds for w in windows)
    return calls_per_s * limits.create_events.max_items


# The replicas start and their first answers tell the budget where the provider's
# minutes begin before the measured minutes do.
WARM_UP_S = 10.0
# The sandbox's minutes are aligned to epoch time. Its count is read this long after one
# begins: the previous minute's calls are all in, and the budget's edge (a second wide
# at least) lets no call of the new minute go yet.
AFTER_MINUTE_BEGINS_S = 0.3


@dataclass
class Drain:
    delivered: int
    seconds: float
    throttled_first_minute: int
    throttled_after: int


async def drain(
    b: Bench, sandbox: SandboxApi, provider: str, replicas: int, seconds: float
) -> Drain:
    """Start `replicas` dispatchers on the backlog and count what the sandbox took in
    whole minutes of its own (`seconds` of them, rounded down, at least one), from the
    first that begins after a warm-up; its 429s before and during them. Whole minutes
    of the provider's: a budget that knows where they begin spends each one's calls,
    so an interval of other bounds would count a share of three minutes in two."""
    throttled_start = await sandbox.throttled_total()
    b.stack.start_replicas(replicas, provider)
    first = await _into_minute_after(time.time() + WARM_UP_S)
    before = await sandbox.delivered_events()
    throttled_minute = await sandbox.throttled_total()
    minutes = max(1, int(seconds // 60))
    await _into_minute_after(first + (minutes - 1) * 60.0)
    delivered = await sandbox.delivered_events() - before
    throttled_end = await sandbox.throttled_total()
    b.stack.stop_replicas()
    return Drain(
        delivered,
        minutes * 60.0,
        throttled_minute - throttled_start,
        throttled_end - throttled_minute,
    )


async def _into_minute_after(after: float) -> float:
    """Sleep until just after the first epoch minute that begins after `after`; when it began."""
    begins = (after // 60 + 1) * 60
    await asyncio.sleep(max(0.0, begins + AFTER_MINUTE_BEGINS_S - time.time()))
    return begins


async def _unsubscribes(b: Bench, every_s: float, until: float) -> dict[str, float]:
    """Unsubscribe a fresh address every `every_s` until `until` (monotonic);
    email -> wall time the service answered."""
    answered: dict[str, float] = {}
    while time.monotonic() < until:
        email = f"leaver.{b.tag}.{uuid.uuid4().hex[:10]}@example.com"
        await b.service.Unsubscribe(pb.UnsubscribeRequest(email=email, reason="bench"), timeout=30)
        answered[email] = time.time()
        await asyncio.sleep(every_s)
    return answered


async def _first_receipts(sandbox: SandboxApi, emails: set[str]) -> dict[str, float]:
    """email -> wall time the sandbox first received a consent call naming it."""
    seen: dict[str, float] = {}
    for path in sandbox.compliance_paths:
        for request in await sandbox.requests(path=path):
            body = request.get("raw_body") or str(request.get("body"))
            at = wall(request["received_at"])
            for email in emails:
                if email in body and at < seen.get(email, float("inf")):
                    seen[email] = at
    return seen


async def run(
    b: Bench,
    provider: str,
    limits: Limits,
    prefix: str,
    backlog_events: int,
    *,
    orders: bool = True,
    unsubscribe_every_s: float | None = None,
) -> None:
    """`prefix` names the provider in the keys ("" for Klaviyo, "ac_"). Without
    `orders` the backlog is product views only: ActiveCampaign takes orders as
    e-commerce objects, another endpoint and budget than event tracking's.
    `unsubscribe_every_s`: the shoppers' pace, if not the configured one."""
    cfg = b.cfg
    every_s = unsubscribe_every_s or cfg.unsubscribe_every_s
    sandbox = b.provider_sandboxes[provider]
    bound = steady_bound(limits)
    published = await backlog.publish(b.nc, f"{prefix}backlog", backlog_events, orders=orders)
    b.note(f"{prefix}backlog: {backlog_events:,} events on the work stream in {published:.1f} s")
    await sandbox.reset()

    # Three replicas first, on the whole backlog, with shoppers unsubscribing.
    spawned = time.monotonic()
    leavers = asyncio.create_task(_unsubscribes(b, every_s, spawned + cfg.provider_seconds - 10))
    three = await drain(b, sandbox, provider, 3, cfg.provider_seconds)
    answered = await leavers
    receipts = await _first_receipts(sandbox, set(answered))
    lags = [receipts.get(e, float("inf")) - t for e, t in answered.items()]
    missing = sum(lag == float("inf") for lag in lags)
    await sandbox.reset()
    # A whole backlog again (three replicas took up to four minutes' worth), of events
    # with ids of their own: the work stream drops a message id it has seen lately.
    await backlog.purge(b.nc)
    await backlog.publish(b.nc, f"{prefix}backlog-again", backlog_events, orders=orders)
    one = await drain(b, sandbox, provider, 1, cfg.provider_seconds)
    await sandbox.reset()

    rows = []
    for replicas, result in ((1, one), (3, three)):
        efficiency = result.delivered / (bound * result.seconds)
        key = f"{prefix}provider_efficiency_{replicas}"
        b.results.update(
            {
                key: efficiency,
                f"{key}_events": result.delivered,
                f"{key}_seconds": result.seconds,
                f"{prefix}provider_429_first_minute_{replicas}": result.throttled_first_minute,
            }
        )
        b.note(
            f"{prefix}provider, {replicas} replica(s): {result.delivered:,} events in "
            f"{result.seconds:.0f} s = {result.delivered / result.seconds:,.0f}/s, bound "
            f"{bound:,.0f}/s -> {efficiency:.3f}; 429s first minute "
            f"{result.throttled_first_minute}, after {result.throttled_after}"
        )
        rows.append(
            Row(key, efficiency, "", f"bound {bound:,.0f} ev/s, {replicas} replica(s)", EFFICIENCY)
        )
    steady_429 = one.throttled_after + three.throttled_after
    p99 = percentile(lags, 99) if lags else float("nan")
    p50 = percentile(lags, 50) if lags else float("nan")
    b.results.update(
        {
            f"{prefix}provider_efficiency": min(r.value for r in rows),
            f"{prefix}provider_429_steady": steady_429,
            f"{prefix}unsubscribe_under_load_p99_s": p99,
            f"{prefix}unsubscribe_under_load_p50_s": p50,
            f"{prefix}unsubscribes": len(lags),
            f"{prefix}unsubscribes_not_received": missing,
        }
    )
    await backlog.purge(b.nc)
    await backlog.drop_results(b.nc)
    b.note(
        f"{prefix}provider: {len(lags)} unsubscribes under load, p50 {p50:.2f} s, "
        f"p99 {p99:.2f} s, {missing} missing"
    )
    b.rows += [
        *rows,
        Row(f"{prefix}provider_429_steady", steady_429, "", "429s in the measured minutes", NO_429),
        Row(
            f"{prefix}unsubscribe_under_load_p99_s",
            p99,
            "s",
            f"{backlog_events:,}-event backlog, 3 replicas, one every {every_s:g} s",
            UNSUBSCRIBE_P99,
        ),
    ]
