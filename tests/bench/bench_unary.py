"""Figure 2: TrackEvent, many calls in flight, against a no-op grpc.aio server in
its own process called by the same client code with the same request bytes."""

from __future__ import annotations

from marketing.v1 import service_pb2 as pb

from tests.bench import clients, payloads
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.stats import percentile, rate, ratio

TARGET = Target(">=", 0.5)
WARMUP = 500


def _requests(tag: str, count: int) -> list[pb.TrackEventRequest]:
    return [pb.TrackEventRequest(event=e) for e in payloads.events(tag, count)]


async def run(b: Bench) -> None:
    cfg = b.cfg
    assert b.stack.dispatcher is None, "ingest is measured with the dispatcher stopped"
    warm = _requests(f"{b.tag}-uwarm", WARMUP)
    requests = _requests(f"{b.tag}-unary", cfg.unary_events)
    n = cfg.unary_in_flight

    await clients.track_unary(b.echo, warm, n)
    echo = await clients.track_unary(b.echo, requests, n)
    echo_rate = rate(echo.events, echo.seconds)
    b.note(f"echo server: {echo.events:,} in {echo.seconds:.2f} s = {echo_rate:,.0f}/s")

    warm_load = await clients.track_unary(b.service, warm, n)
    load = await clients.track_unary(b.service, requests, n)
    service_rate = rate(load.events, load.seconds)
    p50 = percentile(load.latencies_s, 50) * 1000
    p99 = percentile(load.latencies_s, 99) * 1000
    b.note(
        f"TrackEvent, {n} in flight: {load.events:,} in {load.seconds:.2f} s = "
        f"{service_rate:,.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"errors {load.errors} {load.error_samples}"
    )
    b.queued += warm_load.ids + load.ids
    echo_p50 = percentile(echo.latencies_s, 50) * 1000
    echo_p99 = percentile(echo.latencies_s, 99) * 1000
    b.results.update(
        ingest_unary_ratio=ratio(service_rate, echo_rate),
        unary_events_per_s=service_rate,
        echo_events_per_s=echo_rate,
        unary_p50_ms=p50,
        unary_p99_ms=p99,
        echo_p50_ms=echo_p50,
        echo_p99_ms=echo_p99,
        unary_errors=load.errors + warm_load.errors,
    )
    b.rows += [
        Row("unary_events_per_s", service_rate, "ev/s", f"echo server {echo_rate:,.0f} ev/s"),
        Row("ingest_unary_ratio", ratio(service_rate, echo_rate), "", "service / echo", TARGET),
        Row("unary_p50_ms", p50, "ms", f"echo {echo_p50:.1f} ms"),
        Row("unary_p99_ms", p99, "ms", f"echo {echo_p99:.1f} ms"),
    ]
    b.results["unary_event_log_catchup_s"] = await b.settle(dispatcher=False, label="unary")
