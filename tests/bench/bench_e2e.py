"""Figure 3: end-to-end latency, RPC send to provider receipt, at a fixed
offered rate (open loop) with the dispatcher running."""

from __future__ import annotations

from marketing.v1 import service_pb2 as pb

from tests.bench import clients, payloads
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.sandbox_api import receipts
from tests.bench.stats import percentile

TARGET = Target("<", 2.0)
NONE_REJECTED = Target("==", 0)


async def run(b: Bench) -> None:
    cfg = b.cfg
    assert b.stack.dispatcher is not None and b.stack.dispatcher.alive()
    count = int(cfg.e2e_rate * cfg.e2e_seconds)
    requests = [pb.TrackEventRequest(event=e) for e in payloads.events(f"{b.tag}-e2e", count)]
    await b.sandbox.reset()
    sent = await clients.open_loop(b.service, requests, cfg.e2e_rate)
    await b.sandbox.wait_for(list(sent.sent_at), cfg.timeout_s, poll_s=0.25)
    received = receipts(await b.sandbox.requests())
    latencies = [received[i] - at for i, at in sent.sent_at.items() if i in received]
    lost = len(sent.sent_at) - len(latencies)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    rpc_p99 = percentile(sent.load.latencies_s, 99) * 1000
    b.note(
        f"open loop {sent.offered_per_s:,.0f}/s for {count / cfg.e2e_rate:.0f} s: "
        f"e2e p50 {p50:.3f} s, p99 {p99:.3f} s, max {max(latencies, default=0):.3f} s, "
        f"RPC p99 {rpc_p99:.1f} ms, lost {lost}, errors {sent.load.errors} "
        f"{sent.load.error_samples}"
    )
    b.results.update(
        e2e_p50_s=p50,
        e2e_p99_s=p99,
        e2e_max_s=max(latencies, default=float("nan")),
        e2e_offered_per_s=sent.offered_per_s,
        e2e_events=count,
        e2e_lost=lost,
        e2e_errors=sent.load.errors,
        e2e_rpc_p50_ms=percentile(sent.load.latencies_s, 50) * 1000,
        e2e_rpc_p99_ms=rpc_p99,
    )
    offered = f"at {sent.offered_per_s:,.0f} ev/s offered"
    b.rows += [
        Row("e2e_p50_s", p50, "s", offered),
        Row("e2e_p99_s", p99, "s", f"RPC alone p99 {rpc_p99 / 1000:.3f} s", TARGET),
        # p50/p99 cover delivered events only: a rejected RPC has no receipt.
        Row("e2e_rejected", sent.load.errors, "", f"of {count:,} RPCs failed", NONE_REJECTED),
    ]
    await b.settle(dispatcher=True, label="e2e")
    await b.sandbox.reset()
