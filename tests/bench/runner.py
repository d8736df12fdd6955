"""Runs the phases in order against one stack and reports."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from types import FrameType

from dispatcher.providers.activecampaign.limits import LIMITS as ACTIVECAMPAIGN_LIMITS
from dispatcher.providers.klaviyo.limits import LIMITS as KLAVIYO_LIMITS
from tests.bench import (
    bench_campaign,
    bench_dispatch,
    bench_e2e,
    bench_flows,
    bench_ingest,
    bench_preferences,
    bench_provider,
    bench_queue,
    bench_segments,
    bench_sync,
    bench_unary,
    bench_webhooks,
    bus,
)
from tests.bench import clients as grpc_clients
from tests.bench.config import BenchConfig
from tests.bench.context import Bench
from tests.bench.report import missed, table, write_json
from tests.bench.sandbox_api import SandboxApi
from tests.bench.stack import Stack, running_stack

# The provider paths whose calls carry an unsubscribe, per provider.
COMPLIANCE_PATHS = {
    "klaviyo": (
        "/api/profile-subscription-bulk-delete-jobs",
        "/api/profile-suppression-bulk-create-jobs",
    ),
    # Without a newsletter list, ActiveCampaign's consent is in custom fields (contact/sync).
    "activecampaign": ("/api/3/contact/sync", "/api/3/contactLists", "/api/3/contactTags"),
}
# ActiveCampaign has no event id: its accepted tracking calls are counted.
EVENTS_PATHS = {"klaviyo": (), "activecampaign": ("/event",)}


async def _phase(b: Bench, key: str, name: str, run: Callable[[], Awaitable[None]]) -> None:
    if not b.cfg.runs(key):
        return
    print(f"\n== {name}", flush=True)
    started = time.perf_counter()
    try:
        await run()
    except Exception as exc:  # report and go on: later phases still tell something
        traceback.print_exc()
        b.results.setdefault("phase_errors", {})[name] = repr(exc)[:500]
    b.results.setdefault("phase_seconds", {})[name] = round(time.perf_counter() - started, 1)


async def _ensure_dispatcher(b: Bench) -> None:
    if b.stack.dispatcher is None or not b.stack.dispatcher.alive():
        b.stack.start_dispatcher()
    await asyncio.to_thread(b.stack.wait_dispatcher_ready)


async def _phases(cfg: BenchConfig, stack: Stack) -> Bench:
    nc = await bus.connect(stack.nats_url)
    sandbox = SandboxApi(stack.sandbox_url)
    service_channel = grpc_clients.channel(stack.service_address)
    echo_channel = grpc_clients.channel(stack.echo_address)
    b = Bench(
        cfg=cfg,
        stack=stack,
        nc=nc,
        sandbox=sandbox,
        service=grpc_clients.stub(service_channel, stack.token),
        # The echo server ignores the token; it is sent so both do the same work.
        echo=grpc_clients.stub(echo_channel, stack.token),
        tag=uuid.uuid4().hex[:8],
        provider_sandboxes={
            provider: SandboxApi(url, COMPLIANCE_PATHS[provider], EVENTS_PATHS[provider])
            for provider, url in stack.limited_sandboxes.items()
        },
    )
    try:
        await _phase(
            b, "ingest", "1. batch ingest vs raw JetStream publish", lambda: bench_ingest.run(b)
        )
        await _phase(b, "unary", "2. unary ingest vs echo server", lambda: bench_unary.run(b))
        await _phase(
            b, "dispatch", "4. dispatch of the pre-filled queue", lambda: bench_dispatch.run(b)
        )

        async def e2e() -> None:
            await _ensure_dispatcher(b)
            await bench_e2e.run(b)

        await _phase(b, "e2e", "3. end-to-end latency, open loop", e2e)

        async def queue() -> None:
            ingest = b.results.get("ingest_batch_events_per_s") or float("nan")
            ceiling = b.results.get("sandbox_ceiling_events_per_s") or float("nan")
            await bench_queue.run(b, ingest, ceiling)

        await _phase(b, "queue", "5. the whole queue, with memory", queue)

        async def klaviyo() -> None:
            b.stack.stop_dispatcher()  # only the replicas of the phase deliver
            await bench_provider.run(
                b, "klaviyo", KLAVIYO_LIMITS, "", b.cfg.provider_backlog_events
            )

        await _phase(b, "provider", "6. Klaviyo at its real limits", klaviyo)

        async def sync() -> None:
            b.stack.stop_dispatcher()
            await bench_sync.run(b, KLAVIYO_LIMITS, b.cfg.sync_contacts, b.cfg.sync_phases_s)

        await _phase(b, "sync", "7. full contact sync of a million contacts", sync)

        async def activecampaign() -> None:
            b.stack.stop_dispatcher()
            await bench_provider.run(
                b,
                "activecampaign",
                ACTIVECAMPAIGN_LIMITS,
                "ac_",
                b.cfg.ac_backlog_events,
                orders=False,
                unsubscribe_every_s=b.cfg.ac_unsubscribe_every_s,
            )

        await _phase(b, "activecampaign", "8. ActiveCampaign at its real limits", activecampaign)

        async def segments() -> None:
            b.stack.stop_dispatcher()
            await bench_segments.run(b, b.cfg.sync_contacts, b.cfg.segment_events)

        await _phase(b, "segments", "9. segments over 1M contacts and 10M events", segments)

        async def flows() -> None:
            b.stack.stop_dispatcher()
            await b.quiet_database("before the timers")
            await bench_flows.run(
                b,
                KLAVIYO_LIMITS,
                b.cfg.flow_contacts,
                b.cfg.timer_seconds,
                b.cfg.cart_backlog,
                b.cfg.waitlist,
            )

        await _phase(b, "flows", "10. timers, abandoned carts and a waitlist", flows)

        async def webhooks() -> None:
            b.stack.stop_dispatcher()
            await bench_webhooks.run(
                b, b.cfg.webhook_events, b.cfg.sync_contacts, b.cfg.segment_events
            )

        await _phase(b, "webhooks", "11. provider webhooks in, and the dashboard", webhooks)

        async def preferences() -> None:
            b.stack.stop_dispatcher()
            await bench_preferences.run(b, b.cfg.one_click_rate, b.cfg.one_click_seconds)

        await _phase(b, "preferences", "12. one-click unsubscribe under load", preferences)

        async def campaign() -> None:
            b.stack.stop_dispatcher()
            await bench_campaign.run(b, KLAVIYO_LIMITS, b.cfg.campaign_contacts)

        await _phase(b, "campaign", "13. a campaign to 500,000, A/B with three variants", campaign)
    finally:
        for api in b.provider_sandboxes.values():
            await api.aclose()
        await service_channel.close()
        await echo_channel.close()
        await sandbox.aclose()
        await nc.close()
    return b


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the stack's cleanup


def main() -> int:
    for sig in (signal.SIGTERM, signal.SIGINT):  # also SIGINT: asyncio would only cancel a task
        signal.signal(sig, _terminate)
    cfg = BenchConfig.from_env()
    started = time.perf_counter()
    print(f"marketing bench: {cfg}", flush=True)
    with running_stack(cfg.provider_skew_s) as stack:
        print(f"  stack up in {time.perf_counter() - started:.1f} s", flush=True)
        b = asyncio.run(_phases(cfg, stack))
    b.results["total_seconds"] = round(time.perf_counter() - started, 1)
    b.results["config"] = dataclasses.asdict(cfg)
    print("\n" + table(b.rows))
    out = write_json(cfg.out, b.results, b.rows)
    for key in missed(b.rows):
        print(f"MISSED: {key}")
    errors = b.results.get("phase_errors", {})
    for name, error in errors.items():
        print(f"ERROR in {name}: {error}")
    print(f"\n{len(b.rows)} figures in {b.results['total_seconds']} s, written to {out}")
    return 1 if errors else 0
