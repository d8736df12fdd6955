"""Figure 1: TrackEvents in batches (dispatcher stopped) against a raw pipelined
JetStream publish of the same Delivery bytes from Python."""

from __future__ import annotations

from tests.bench import bus, clients, payloads
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.stats import percentile, rate, ratio

TARGET = Target(">=", 0.6)


async def run(b: Bench) -> None:
    cfg = b.cfg
    assert b.stack.dispatcher is None, "ingest is measured with the dispatcher stopped"
    base = payloads.events(f"{b.tag}-base", cfg.baseline_events)
    messages = [(e.event_id, payloads.delivery_bytes(e)) for e in base]
    del base
    baseline_s = await bus.raw_publish(b.nc, messages)
    baseline = rate(len(messages), baseline_s)
    b.note(f"raw JetStream publish: {len(messages):,} in {baseline_s:.2f} s = {baseline:,.0f}/s")
    del messages

    warm = payloads.events(f"{b.tag}-warm", cfg.batch_size * 2)
    warm_load = await clients.track_batches(
        b.service, payloads.batches(warm, cfg.batch_size), cfg.batch_in_flight
    )
    events = payloads.events(f"{b.tag}-ingest", cfg.ingest_events)
    requests = list(payloads.batches(events, cfg.batch_size))
    load = await clients.track_batches(b.service, requests, cfg.batch_in_flight)
    accepted = rate(load.events, load.seconds)
    b.note(
        f"TrackEvents x{cfg.batch_size}, {cfg.batch_in_flight} in flight: {load.events:,} in "
        f"{load.seconds:.2f} s = {accepted:,.0f}/s, errors {load.errors} {load.error_samples}"
    )
    b.queued += warm_load.ids + load.ids
    b.results["ingest_errors"] = warm_load.errors + load.errors
    b.results.update(
        ingest_batch_ratio=ratio(accepted, baseline),
        ingest_batch_events_per_s=accepted,
        js_publish_events_per_s=baseline,
        ingest_batch_p50_ms=percentile(load.latencies_s, 50) * 1000,
        ingest_batch_p99_ms=percentile(load.latencies_s, 99) * 1000,
    )
    b.rows += [
        Row(
            "ingest_batch_events_per_s", accepted, "ev/s", f"JetStream publish {baseline:,.0f} ev/s"
        ),
        Row("ingest_batch_ratio", ratio(accepted, baseline), "", "service / raw publish", TARGET),
    ]
    b.results["event_log_catchup_s"] = await b.settle(dispatcher=False, label="batch ingest")
