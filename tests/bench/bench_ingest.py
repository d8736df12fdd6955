"""Figure 1: TrackEvents in batches (dispatcher stopped) against a raw pipelined
JetStream publish of the same Delivery bytes from Python.

The service is measured twice: with every process of the stack sharing both
cores, nothing pinned (the headline figure, as the raw publish is measured),
and then with the gRPC process on a core of its own (see tests/bench/cpus.py),
the layout a deployment gives it, reported beside."""

from __future__ import annotations

from tests.bench import bus, clients, cpus, payloads
from tests.bench.clients import Load
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
    framed_s = await bus.framed_publish(b.nc, messages, cfg.batch_size, cfg.batch_in_flight)
    framed = rate(len(messages), framed_s)
    b.note(
        f"the same through the service's BatchPublisher, x{cfg.batch_size}, "
        f"{cfg.batch_in_flight} in flight: {framed_s:.2f} s = {framed:,.0f}/s"
    )
    del messages

    warm = payloads.events(f"{b.tag}-warm", cfg.batch_size * 2)
    warm_load = await clients.track_batches(
        b.service, payloads.batches(warm, cfg.batch_size), cfg.batch_in_flight
    )
    b.queued += warm_load.ids
    shared = await _load(b, "shared", "every process on both cores")
    await b.settle(dispatcher=False, label="batch ingest, shared cores")
    with cpus.dedicated_core([b.stack.service.pid], b.stack.all_pids()) as pinned:
        dedicated = await _load(b, "dedicated", "the gRPC process on a core of its own")
    if not pinned:
        b.note("fewer than two cores (or not Linux): nothing was pinned")
    accepted = rate(shared.events, shared.seconds)
    dedicated_rate = rate(dedicated.events, dedicated.seconds)
    b.results["ingest_errors"] = warm_load.errors + shared.errors + dedicated.errors
    b.results.update(
        ingest_batch_ratio=ratio(accepted, baseline),
        ingest_batch_events_per_s=accepted,
        ingest_batch_ratio_dedicated=ratio(dedicated_rate, baseline),
        ingest_batch_dedicated_events_per_s=dedicated_rate,
        ingest_batch_pinned=pinned,
        js_publish_events_per_s=baseline,
        js_framed_publish_events_per_s=framed,
        ingest_batch_ratio_vs_framed=ratio(accepted, framed),
        ingest_batch_p50_ms=percentile(shared.latencies_s, 50) * 1000,
        ingest_batch_p99_ms=percentile(shared.latencies_s, 99) * 1000,
    )
    b.rows += [
        Row(
            "ingest_batch_events_per_s", accepted, "ev/s", f"JetStream publish {baseline:,.0f} ev/s"
        ),
        Row("ingest_batch_ratio", ratio(accepted, baseline), "", "service / raw publish", TARGET),
        Row(
            "ingest_batch_ratio_vs_framed",
            ratio(accepted, framed),
            "",
            f"service / its own publisher alone, {framed:,.0f} ev/s",
        ),
        Row(
            "ingest_batch_ratio_dedicated",
            ratio(dedicated_rate, baseline),
            "",
            "the same, the gRPC process on a core of its own",
        ),
    ]
    b.results["event_log_catchup_s"] = await b.settle(dispatcher=False, label="batch ingest")


async def _load(b: Bench, name: str, layout: str) -> Load:
    cfg = b.cfg
    events = payloads.events(f"{b.tag}-{name}", cfg.ingest_events)
    requests = list(payloads.batches(events, cfg.batch_size))
    del events
    load = await clients.track_batches(b.service, requests, cfg.batch_in_flight)
    b.note(
        f"TrackEvents x{cfg.batch_size}, {cfg.batch_in_flight} in flight, {layout}: "
        f"{load.events:,} in {load.seconds:.2f} s = {rate(load.events, load.seconds):,.0f}/s, "
        f"p50 {percentile(load.latencies_s, 50) * 1000:.0f} ms, errors {load.errors} "
        f"{load.error_samples}"
    )
    b.queued += load.ids
    return load
