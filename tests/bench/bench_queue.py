"""Figure 5: many events through the whole queue (ingest with the dispatcher
running) until each is at the provider: time, loss, duplicates, peak RSS."""

from __future__ import annotations

import time

from tests.bench import clients, payloads
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.rss import RssSampler
from tests.bench.stats import rate

RSS_TARGET = Target("<", 300)
NO_LOSS = Target("==", 0)


async def run(b: Bench, ingest_rate: float, dispatch_ceiling: float) -> None:
    cfg = b.cfg
    b.stack.stop_dispatcher()  # a fresh process: its peak RSS belongs to this phase
    dispatcher = b.stack.start_dispatcher()
    b.stack.wait_dispatcher_ready()
    await b.sandbox.reset()
    events = payloads.events(f"{b.tag}-queue", cfg.queue_events)
    requests = list(payloads.batches(events, cfg.batch_size))
    ids = [e.event_id for e in events]
    del events
    pids = {
        "service": b.stack.service.pid,
        "service_workers": b.stack.workers.pid,
        "dispatcher": dispatcher.pid,
    }
    sampler = RssSampler(pids).start()
    started = time.time()
    load = await clients.track_batches(b.service, requests, cfg.batch_in_flight)
    counts = await b.sandbox.wait_for(ids, cfg.timeout_s)
    _, last, _ = await b.sandbox.receipt_span()
    seconds = last - started
    # The service's event log and delivery results belong to the phase too.
    bookkeeping = await b.settle(dispatcher=True, label="queue")
    peak = await sampler.stop()
    hwm = sampler.high_water_mb()
    lost = sum(i not in counts for i in ids)
    duplicates = sum(counts.get(i, 0) > 1 for i in ids)
    ideal = len(ids) / min(ingest_rate, dispatch_ceiling)
    b.note(
        f"{len(ids):,} events through the queue in {seconds:.2f} s "
        f"({rate(len(ids), seconds):,.0f}/s),"
        f" ingest took {load.seconds:.2f} s, lost {lost}, duplicates {duplicates}, "
        f"errors {load.errors} {load.error_samples}; peak RSS service {peak['service']:.0f} MB,"
        f" bus workers {peak['service_workers']:.0f} MB,"
        f" dispatcher {peak['dispatcher']:.0f} MB ({sampler.samples} samples)"
    )
    b.results.update(
        queue_100k_s=seconds,
        queue_events=len(ids),
        queue_events_per_s=rate(len(ids), seconds),
        queue_ingest_s=load.seconds,
        queue_errors=load.errors,
        queue_bookkeeping_s=bookkeeping,
        queue_100k_lost=lost,
        queue_100k_duplicates=duplicates,
        rss_service_mb=peak["service"],
        rss_dispatcher_mb=peak["dispatcher"],
        rss_service_workers_mb=peak["service_workers"],
        rss_service_hwm_mb=hwm["service"],
        rss_dispatcher_hwm_mb=hwm["dispatcher"],
    )
    b.rows += [
        Row(
            "queue_100k_s",
            seconds,
            "s",
            f"{ideal:.1f} s at min(batch ingest, sandbox bulk)",
        ),
        Row(
            "queue_bookkeeping_s",
            bookkeeping,
            "s",
            "service event log + results done, after the last receipt",
        ),
        Row("queue_100k_lost", lost, "", f"of {len(ids):,} events", NO_LOSS),
        Row("queue_100k_duplicates", duplicates, "", "ids received more than once"),
        Row(
            "rss_service_mb",
            peak["service"],
            "MB",
            f"VmHWM over the run {hwm['service']:.0f} MB",
            RSS_TARGET,
        ),
        Row(
            "rss_service_workers_mb",
            peak["service_workers"],
            "MB",
            f"marketing-service work; VmHWM {hwm['service_workers']:.0f} MB",
            RSS_TARGET,
        ),
        Row(
            "rss_dispatcher_mb",
            peak["dispatcher"],
            "MB",
            "fresh process for this phase",
            RSS_TARGET,
        ),
    ]
