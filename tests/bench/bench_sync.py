"""Figure 7: a full contact sync of a million contacts against the Klaviyo
sandbox with its rate limits on.

The contacts are generated in PostgreSQL by one INSERT ... SELECT (about 15 s;
faster than loading a cached file), with a realistic mix: 89 % opted in to
email marketing, 10 % who withdrew, 1 % suppressed, a quarter with a phone and
SMS consent, 60 % newsletter members. The bound is the provider's: the least
time its per-endpoint windows allow for the fewest calls that can carry these
people (full jobs of every operation: imports of 10,000, subscriptions of 1,000,
unsubscribes and suppressions of 100), every window of an endpoint taken
together. `sync_1m_ratio` = bound / measured."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from marketing.v1 import contact_sync_pb2
from marketing.v1 import service_pb2 as pb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from dispatcher.providers.base import START_IMPORT, Limits, RateWindow
from dispatcher.providers.klaviyo import client as klaviyo_paths
from dispatcher.providers.klaviyo.consent_calls import SUBSCRIBE, SUPPRESS, UNSUBSCRIBE, UNSUPPRESS
from tests.bench import database
from tests.bench.context import Bench
from tests.bench.cpus import cpu_by_pid, cpu_since, processes_mentioning, with_descendants
from tests.bench.report import Row, Target
from tests.bench.rss import RssSampler
from tests.bench.sandbox_api import SandboxApi, wall
from tests.bench.stamp_ages import stamp_ages

RUNNING = contact_sync_pb2.ContactSync.State.STATE_RUNNING
RATIO = Target(">=", 0.9)
RSS = Target("<", 300)
POLL_S = 0.5
REFUSALS_NAMED = 5  # refusals whose time a sync's note gives (all are in the results)

_GENERATE = """
INSERT INTO marketing_contact (id, email, first_name, last_name, phone, loyalty_tier,
    lifetime_value, lifetime_value_currency, order_count, location, language, timezone,
    custom_properties, email_opt_in, sms_opt_in, push_opt_in, created_at, updated_at)
SELECT
    md5('bench-contact-' || n)::uuid,
    'shopper.' || n || '@sync.example.com',
    (ARRAY['Ada','Grace','Linus','Ken','Barbara','Edsger'])[1 + n % 6],
    (ARRAY['Lovelace','Hopper','Torvalds','Thompson','Liskov','Dijkstra'])[1 + n % 6],
    CASE WHEN n % 4 = 0 THEN '+4915' || lpad((n % 100000000)::text, 9, '0') END,
    (ARRAY['bronze','silver','gold'])[1 + n % 3],
    (n % 900) + 0.5, 'EUR', n % 40, 'Berlin, DE', 'de-DE', 'Europe/Berlin',
    jsonb_build_object('favourite_category', (ARRAY['mugs','tea','gifts'])[1 + n % 3]),
    n % 100 < 89, n % 4 = 0 AND n % 100 < 89, false, now(), now()
FROM generate_series(1, :contacts) AS n
"""
_NEWSLETTER = """
INSERT INTO marketing_segment_membership (contact_id, segment, added_at)
SELECT id, 'newsletter', now() FROM marketing_contact
WHERE email LIKE 'shopper.%@sync.example.com' AND email_opt_in
  AND abs(hashtext(email)) % 100 < 67
"""
_SUPPRESS = """
INSERT INTO marketing_suppression (email_sha256, reason, created_at)
SELECT encode(sha256(convert_to(email, 'UTF8')), 'hex'), 'bench', now()
FROM marketing_contact
WHERE email LIKE 'shopper.%@sync.example.com' AND NOT email_opt_in
  AND abs(hashtext(email)) % 11 = 0
"""
_OUTBOX_USED = """
SELECT setval(pg_get_serial_sequence('marketing_outbox', 'seq'),
              greatest(coalesce(pg_sequence_last_value(
                  pg_get_serial_sequence('marketing_outbox', 'seq')), 0), 1))
"""
_COUNTS = """
SELECT count(*) AS total,
       count(*) FILTER (WHERE s.email_sha256 IS NOT NULL) AS suppressed,
       count(*) FILTER (WHERE s.email_sha256 IS NULL AND (c.email_opt_in OR c.sms_opt_in))
           AS subscribe,
       count(*) FILTER (WHERE s.email_sha256 IS NULL AND NOT c.email_opt_in) AS withdrawn
FROM marketing_contact c
LEFT JOIN marketing_suppression s
  ON s.email_sha256 = encode(sha256(convert_to(c.email, 'UTF8')), 'hex')
WHERE c.email LIKE 'shopper.%@sync.example.com'
"""


async def generate(database_url: str, contacts: int) -> Mapping[str, int]:
    """The contacts (once per stack) and, per kind of consent call, how many need it."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            existing = await connection.scalar(
                text(
                    "SELECT count(*) FROM marketing_contact"
                    " WHERE email LIKE 'shopper.%@sync.example.com'"
                )
            )
            if existing < contacts:
                await connection.execute(text(_GENERATE), {"contacts": contacts})
                await connection.execute(text(_NEWSLETTER))
                await connection.execute(text(_SUPPRESS))
            # A deployed service has handed out outbox sequences, and a chunk then
            # carries the newest (`outbox_watermark`): the dispatcher reads every
            # person's fences before sending (sync_stage.not_newer_at_provider). A
            # database that never wrote an outbox row skips that, and a sync begun 45 s
            # into a minute measured so used 32 to 33 CPU-seconds of the dispatcher and
            # 220 to 230 MB at most, against 37.6 and 249 MB with the fences read.
            await connection.execute(text(_OUTBOX_USED))
        # Committed (begin, not connect): statistics an ANALYZE gathers in a
        # transaction rolled back are lost, and the planner would guess. (The
        # syncs vacuum and analyse again before each; other phases that make
        # these contacts rely on this one.)
        async with engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
            row = (await connection.execute(text(_COUNTS))).mappings().one()
            return dict(row)
    finally:
        await engine.dispose()


def least_seconds(calls: int, windows: tuple[RateWindow, ...]) -> float:
    """When the last of `calls` calls can go at the earliest under fixed windows
    counted from the first call: each call at the first moment every window
    has room for it. The windows are taken together: 1,000 calls at 75 a
    second and 750 a minute fill the first minute in 10 s, and the other 250
    take four more seconds after it (63 s, not the 60 s of the minute window
    alone)."""
    if calls <= 0:
        return 0.0
    at = 0.0
    counted: dict[RateWindow, tuple[int, int]] = {}  # window -> (its index, calls in it)
    for _ in range(calls):
        while full := [w for w in windows if _calls_in(counted, w, at) >= w.calls]:
            at = max((math.floor(at / w.seconds) + 1) * w.seconds for w in full)
        for w in windows:
            counted[w] = (math.floor(at / w.seconds), _calls_in(counted, w, at) + 1)
    return at


def _calls_in(counted: Mapping[RateWindow, tuple[int, int]], window: RateWindow, at: float) -> int:
    index, count = counted.get(window, (-1, 0))
    return count if index == math.floor(at / window.seconds) else 0


def provider_bound(limits: Limits, counts: Mapping[str, int]) -> tuple[float, dict[str, int]]:
    """Seconds the provider's limits need for these people, and the calls per operation."""
    assert limits.import_profiles is not None
    people = {
        START_IMPORT: (counts["total"], limits.import_profiles.max_items),
        SUBSCRIBE: (counts["subscribe"], limits.consent[SUBSCRIBE].max_items),
        UNSUPPRESS: (counts["withdrawn"], limits.consent[UNSUPPRESS].max_items),
        UNSUBSCRIBE: (
            counts["withdrawn"] + counts["suppressed"],
            limits.consent[UNSUBSCRIBE].max_items,
        ),
        SUPPRESS: (counts["suppressed"], limits.consent[SUPPRESS].max_items),
    }
    calls = {op: math.ceil(n / per_call) for op, (n, per_call) in people.items()}
    seconds = {
        op: least_seconds(n, tuple(w for b in limits.rates[op] for w in b.windows))
        for op, n in calls.items()
    }
    return max(seconds.values()), calls


@dataclass(frozen=True)
class SyncRun:
    """One sync, begun `phase_s` into a provider minute."""

    phase_s: float
    seconds: float
    sync: contact_sync_pb2.ContactSync
    peak_rss_mb: dict[str, float]
    cpu_s: dict[str, float]
    # The sandbox's rate-limit refusals (429s) since the reset before the sync:
    # bucket, window_s and at_s (seconds into the sync; below 0, before it began).
    refusals: list[dict[str, Any]]
    # Per consent endpoint of a hundred people a call: its calls in each provider
    # minute the sync touched (0: the one it began in) and its last call (s into it).
    consent_calls: dict[str, dict[str, Any]]
    vacuumed_s: float  # the database's VACUUM (ANALYZE) before it
    autovacuumed: list[str]  # what autovacuum worked on during it
    # The replica's requests, and how many left more than 25, 50 and 100 ms after their
    # budget stamp (tests/bench/stamp_ages.py).
    stamp_ages: dict[str, int]


async def run(b: Bench, limits: Limits, contacts: int, phases_s: Sequence[float]) -> None:
    """A sync of `contacts` begun at each of `phases_s` seconds into a provider
    minute (the sandbox's windows are epoch-aligned, as Klaviyo's fixed windows
    are somewhere): a sync needs two of the consent endpoints' minutes at
    least, and how much of the first is left depends on the phase (README,
    figure 7). The figures are the slowest run's."""
    started = time.perf_counter()
    counts = await generate(b.stack.database_url, contacts)
    b.note(f"{counts['total']:,} contacts ready in {time.perf_counter() - started:.0f} s: {counts}")
    bound, calls = provider_bound(limits, counts)
    runs = []
    for phase_s in phases_s:
        one = await _sync_once(b, phase_s)
        b.note(
            f"sync of {counts['total']:,} contacts begun {one.phase_s:.1f} s into a provider "
            f"minute: {one.seconds:.1f} s, state "
            f"{contact_sync_pb2.ContactSync.State.Name(one.sync.state)}, imported "
            f"{one.sync.imported_contacts:,}, failed {one.sync.failed_contacts:,}; "
            f"provider bound {bound:.0f} s for "
            f"calls {calls} -> ratio {bound / one.seconds:.2f}; consent calls by provider "
            f"minute, and the last (s): {one.consent_calls}; peak RSS {one.peak_rss_mb}; "
            f"CPU seconds {one.cpu_s}; refused (429) {_summary(one.refusals)}; "
            f"requests after their budget stamp: {one.stamp_ages}; "
            f"database vacuumed before it in {one.vacuumed_s:.1f} s, autovacuum during it: "
            f"{', '.join(one.autovacuumed) or 'none'}"
        )
        runs.append(one)
    slowest = max(runs, key=lambda r: r.seconds)
    peak = max(max(r.peak_rss_mb.values()) for r in runs)
    ratio = bound / slowest.seconds
    b.results.update(
        sync_1m_s=slowest.seconds,
        sync_1m_ratio=ratio,
        sync_1m_bound_s=bound,
        sync_1m_minute_phase_s=slowest.phase_s,
        sync_1m_by_minute_phase={f"{r.phase_s:.0f}": round(r.seconds, 1) for r in runs},
        sync_1m_calls=calls,
        sync_1m_imported=slowest.sync.imported_contacts,
        sync_1m_failed=slowest.sync.failed_contacts,
        sync_1m_state=contact_sync_pb2.ContactSync.State.Name(slowest.sync.state),
        sync_1m_peak_rss_mb=peak,
        sync_1m_peak_rss_by_process_mb=slowest.peak_rss_mb,
        sync_1m_cpu_s_by_process=slowest.cpu_s,
        sync_1m_autovacuumed={f"{r.phase_s:.0f}": r.autovacuumed for r in runs},
        sync_1m_vacuum_s={f"{r.phase_s:.0f}": round(r.vacuumed_s, 1) for r in runs},
        sync_1m_refusals={f"{r.phase_s:.0f}": r.refusals for r in runs},
        sync_1m_consent_calls={f"{r.phase_s:.0f}": r.consent_calls for r in runs},
        sync_1m_stamp_ages={f"{r.phase_s:.0f}": r.stamp_ages for r in runs},
    )
    phases = ", ".join(f"{r.seconds:.0f} s at {r.phase_s:.0f} s" for r in runs)
    bound_note = f"provider bound {bound:.0f} s; slowest of {phases}"
    b.rows += [
        Row("sync_1m_s", slowest.seconds, "s", bound_note),
        Row("sync_1m_ratio", ratio, "", "bound / measured", RATIO),
        Row("sync_1m_peak_rss_mb", peak, "MB", "bus workers, dispatcher", RSS),
    ]


async def _sync_once(b: Bench, phase_s: float) -> SyncRun:
    """A vacuumed database, a fresh sandbox and dispatcher, then a sync begun
    `phase_s` into a minute. Vacuumed first as autovacuum would have done by
    then, so that its launcher, which wakes once a minute, does not vacuum what
    the phases before wrote (the contacts just made, say) in the middle of it:
    the first sync took 82 to 89 s in some runs without this, 65 to 74 s with
    it (README, figure 7; the cause inferred, not watched)."""
    vacuumed_s = await database.vacuum_database(b.stack.database_url)
    sandbox = b.provider_sandboxes["klaviyo"]
    await sandbox.reset()
    replicas = b.stack.start_replicas(1, "klaviyo", metrics=True)
    await asyncio.to_thread(b.stack.wait_replicas_ready)
    sampler = RssSampler(
        {"service_workers": b.stack.workers.pid, "dispatcher": replicas[0].pid}
    ).start()
    cpu_before = {name: cpu_by_pid(pids) for name, pids in cpu_groups(b, replicas[0].pid).items()}
    await asyncio.sleep((phase_s - time.time()) % 60)
    minute_phase_s = time.time() % 60
    began = time.perf_counter()
    began_at = datetime.now(UTC)
    started_sync = await b.service.StartContactSync(pb.StartContactSyncRequest(), timeout=60)
    sync = started_sync.contact_sync
    while sync.state == RUNNING:
        await asyncio.sleep(POLL_S)
        reply = await b.service.GetContactSync(pb.GetContactSyncRequest(name=sync.name), timeout=30)
        sync = reply.contact_sync
    seconds = time.perf_counter() - began
    ended_at = datetime.now(UTC)
    peak = await sampler.stop()
    groups = cpu_groups(b, replicas[0].pid)  # PostgreSQL's processes as they are now
    cpu = {name: round(cpu_since(cpu_before[name], pids), 1) for name, pids in groups.items()}
    refusals = _refusals(await sandbox.throttled(), began_at.timestamp())
    consent_calls = await _consent_calls(sandbox, began_at.timestamp())
    autovacuumed = await database.autovacuumed_between(b.stack.database_url, began_at, ended_at)
    ages = await stamp_ages(b.stack.replica_metrics[0])
    b.stack.stop_replicas()
    return SyncRun(
        minute_phase_s,
        seconds,
        sync,
        peak,
        cpu,
        refusals,
        consent_calls,
        vacuumed_s,
        autovacuumed,
        ages,
    )


# The consent endpoints whose calls carry a hundred people (their request log is
# small; the subscriptions' thousand a call would be some 200 MB to read).
_HUNDRED_A_CALL = {
    UNSUBSCRIBE: klaviyo_paths.UNSUBSCRIBE,
    SUPPRESS: klaviyo_paths.SUPPRESS,
    UNSUPPRESS: klaviyo_paths.UNSUPPRESS,
}


async def _consent_calls(sandbox: SandboxApi, began_wall: float) -> dict[str, dict[str, Any]]:
    """Where a sync's consent calls fell: by provider minute, and the last one."""
    found = {}
    for operation, path in _HUNDRED_A_CALL.items():
        times = [wall(r["received_at"]) for r in await sandbox.requests(path)]
        minutes = Counter(math.floor(t / 60) - math.floor(began_wall / 60) for t in times)
        last = max(times, default=began_wall)
        # How fast the last minute's calls went: a drain at the burst rate (75 a second)
        # ends the sync soonest.
        last_minute_s = math.floor(last / 60) * 60
        seconds = Counter(math.floor(t - last_minute_s) for t in times if t >= last_minute_s)
        found[operation] = {
            "by_minute": [minutes[k] for k in range(max(minutes, default=-1) + 1)],
            "last_s": round(last - began_wall, 1),
            "last_minute_by_s": [seconds[k] for k in range(max(seconds, default=-1) + 1)],
        }
    return found


def _refusals(report: dict[str, Any], began_wall: float) -> list[dict[str, Any]]:
    """Each refusal the sandbox answered: its bucket, window and when (s into the sync)."""
    return [
        {
            "bucket": answer["bucket"],
            "window_s": answer["window_s"],
            "at_s": round(wall(answer["received_at"]) - began_wall, 3),
        }
        for answer in report["answers"]
    ]


def _summary(refusals: list[dict[str, Any]]) -> str:
    """How many, by bucket and window, and when the first few came."""
    if not refusals:
        return "0"
    counts = Counter(f"{r['bucket']} ({r['window_s']} s)" for r in refusals)
    first = ", ".join(f"{r['at_s']:.3f}" for r in refusals[:REFUSALS_NAMED])
    return f"{len(refusals)}: {dict(counts)}, the first at {first} s into the sync"


def cpu_groups(b: Bench, dispatcher_pid: int) -> dict[str, list[int]]:
    """The processes a provider phase keeps busy, by part: where its CPU goes."""
    postgres = with_descendants(processes_mentioning(str(b.stack.root / "pg")))
    return {
        "service_workers": [b.stack.workers.pid],
        "dispatcher": [dispatcher_pid],
        "sandbox": [b.stack.helper("klaviyo-sandbox").pid],
        "nats": [b.stack.helper("nats-server").pid],
        "postgres": postgres,
    }
