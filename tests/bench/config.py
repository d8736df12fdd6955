"""Phase sizes and knobs, from the environment (BENCH_SCALE scales every size)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from service.devstack import LOCAL_SANDBOX_SKEW_S


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _floats(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = os.environ.get(name, "").strip()
    return tuple(float(part) % 60 for part in raw.split(",") if part.strip()) or default


def _int(name: str, default: float, scale: float, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else max(minimum, int(default * scale))


@dataclass(frozen=True)
class BenchConfig:
    scale: float
    out: str
    batch_size: int  # events per TrackEvents call
    batch_in_flight: int  # TrackEvents calls in flight
    baseline_events: int  # raw JetStream publish
    ingest_events: int  # TrackEvents with the dispatcher stopped (fills the queue)
    unary_events: int  # TrackEvent calls, service and echo server alike
    unary_in_flight: int
    unary_rounds: int  # echo server and service measured in turn; medians reported
    ceiling_events: int  # bulk posts straight to the sandbox
    e2e_rate: float  # events/s offered, open loop
    e2e_seconds: float
    queue_events: int  # the whole queue with the dispatcher running
    timeout_s: float  # longest wait for any one phase to drain
    provider_seconds: float  # each drain at the provider's limits (whole minutes)
    provider_backlog_events: int  # Klaviyo: the backlog the replicas drain
    # BENCH_PROVIDER_SKEW_S: the rate-limited replicas' MARKETING_BUDGET_PROVIDER_SKEW_S.
    # Their sandboxes read the replicas' clock (devstack.LOCAL_SANDBOX_SKEW_S); 0.05 measures
    # as the product's default for Klaviyo itself would count the sandbox's seconds.
    provider_skew_s: float
    ac_backlog_events: int  # ActiveCampaign: one event per call, 5 calls/s
    unsubscribe_every_s: float  # unsubscribes while the backlog drains
    # ActiveCampaign: its whole account takes 5 requests/s and an unsubscribe makes three
    # (the consent record, the newsletter list's status, a look at the suppression tag),
    # so one a second keeps the account at 60 %, where two would ask more than it allows.
    ac_unsubscribe_every_s: float
    sync_contacts: int  # the full sync's contacts
    # BENCH_SYNC_PHASES: seconds into a provider minute a sync begins at, one
    # sync each (a sync near a minute's start and one late in it).
    sync_phases_s: tuple[float, ...]
    segment_events: int  # the segments phase's events (its contacts are the sync's)
    flow_contacts: int  # the flows phase's contacts (carts and waitlist subscribers)
    timer_seconds: int  # how long 1,000 timers a second fall due
    cart_backlog: int  # overdue carts worked off at once
    waitlist: int  # people waiting for one product
    webhook_events: int  # engagements the providers' webhooks report
    one_click_rate: float  # one-click unsubscribes a second, open loop
    one_click_seconds: float
    campaign_contacts: int  # the campaign phase's segment
    phases: frozenset[str]  # BENCH_PHASES: the phases to run (default all)

    @classmethod
    def from_env(cls) -> BenchConfig:
        scale = _float("BENCH_SCALE", 1.0)
        return cls(
            scale=scale,
            out=os.environ.get("BENCH_OUT") or "bench-results.json",
            batch_size=_int("BENCH_BATCH_SIZE", 500, 1.0, 1),
            batch_in_flight=_int("BENCH_BATCH_IN_FLIGHT", 4, 1.0, 1),
            baseline_events=_int("BENCH_BASELINE_EVENTS", 50_000, scale, 2_000),
            ingest_events=_int("BENCH_INGEST_EVENTS", 50_000, scale, 2_000),
            unary_events=_int("BENCH_UNARY_EVENTS", 20_000, scale, 1_000),
            unary_in_flight=_int("BENCH_UNARY_IN_FLIGHT", 128, 1.0, 1),
            unary_rounds=_int("BENCH_UNARY_ROUNDS", 3, 1.0, 1),
            ceiling_events=_int("BENCH_CEILING_EVENTS", 30_000, scale, 3_000),
            e2e_rate=_float("BENCH_E2E_RATE", 1000.0),
            e2e_seconds=_float("BENCH_E2E_SECONDS", max(3.0, 15.0 * scale)),
            queue_events=_int("BENCH_QUEUE_EVENTS", 100_000, scale, 2_000),
            timeout_s=_float("BENCH_TIMEOUT_S", 180.0),
            provider_seconds=_float("BENCH_PROVIDER_SECONDS", 120.0),
            provider_backlog_events=_int("BENCH_PROVIDER_BACKLOG", 1_000_000, scale, 10_000),
            provider_skew_s=_float("BENCH_PROVIDER_SKEW_S", LOCAL_SANDBOX_SKEW_S),
            ac_backlog_events=_int("BENCH_AC_BACKLOG", 5_000, scale, 1_000),
            unsubscribe_every_s=_float("BENCH_UNSUBSCRIBE_EVERY_S", 0.5),
            ac_unsubscribe_every_s=_float("BENCH_AC_UNSUBSCRIBE_EVERY_S", 1.0),
            sync_contacts=_int("BENCH_SYNC_CONTACTS", 1_000_000, scale, 10_000),
            sync_phases_s=_floats("BENCH_SYNC_PHASES", (5.0, 45.0)),
            segment_events=_int("BENCH_SEGMENT_EVENTS", 10_000_000, scale, 100_000),
            flow_contacts=_int("BENCH_FLOW_CONTACTS", 100_000, scale, 5_000),
            timer_seconds=_int("BENCH_TIMER_SECONDS", 30, 1.0, 5),
            cart_backlog=_int("BENCH_CART_BACKLOG", 20_000, scale, 2_000),
            waitlist=_int("BENCH_WAITLIST", 100_000, scale, 5_000),
            webhook_events=_int("BENCH_WEBHOOK_EVENTS", 200_000, scale, 10_000),
            one_click_rate=_float("BENCH_ONE_CLICK_RATE", 200.0),
            one_click_seconds=_float("BENCH_ONE_CLICK_SECONDS", max(5.0, 30.0 * scale)),
            campaign_contacts=_int("BENCH_CAMPAIGN_CONTACTS", 500_000, scale, 10_000),
            phases=_phases(os.environ.get("BENCH_PHASES", "")),
        )

    def runs(self, phase: str) -> bool:
        return not self.phases or phase in self.phases


# Phase names for BENCH_PHASES (comma-separated; empty: all of them).
PHASES = (
    "ingest",
    "unary",
    "dispatch",
    "e2e",
    "queue",
    "provider",
    "sync",
    "activecampaign",
    "segments",
    "flows",
    "webhooks",
    "preferences",
    "campaign",
)


def _phases(raw: str) -> frozenset[str]:
    chosen = frozenset(p.strip() for p in raw.split(",") if p.strip())
    unknown = chosen - set(PHASES)
    if unknown:
        raise SystemExit(f"BENCH_PHASES: unknown {sorted(unknown)}; phases are {', '.join(PHASES)}")
    return chosen
