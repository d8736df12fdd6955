"""Figure 2: TrackEvent, many calls in flight, against a no-op grpc.aio server in
its own process called by the same client code with the same request bytes.

Like figure 1, measured with all processes sharing the cores, the headline,
and with the server under test (the echo server, then the service) on a core of
its own."""

from __future__ import annotations

import contextlib
from typing import Any

from marketing.v1 import service_pb2 as pb

from tests.bench import clients, cpus, payloads
from tests.bench.clients import Load
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.stats import percentile, rate, ratio

TARGET = Target(">=", 0.5)
WARMUP = 500


def _requests(tag: str, count: int) -> list[pb.TrackEventRequest]:
    return [pb.TrackEventRequest(event=e) for e in payloads.events(tag, count)]


async def run(b: Bench) -> None:
    assert b.stack.dispatcher is None, "ingest is measured with the dispatcher stopped"
    echo, load = await _pair(b, "shared", pin=False)
    await b.settle(dispatcher=False, label="unary, shared cores")
    dedicated_echo, dedicated = await _pair(b, "dedicated", pin=True)
    n = b.cfg.unary_in_flight
    echo_rate, service_rate = rate(echo.events, echo.seconds), rate(load.events, load.seconds)
    dedicated_ratio = ratio(
        rate(dedicated.events, dedicated.seconds),
        rate(dedicated_echo.events, dedicated_echo.seconds),
    )
    p50 = percentile(load.latencies_s, 50) * 1000
    p99 = percentile(load.latencies_s, 99) * 1000
    echo_p50 = percentile(echo.latencies_s, 50) * 1000
    echo_p99 = percentile(echo.latencies_s, 99) * 1000
    b.results.update(
        ingest_unary_ratio=ratio(service_rate, echo_rate),
        ingest_unary_ratio_dedicated=dedicated_ratio,
        unary_events_per_s=service_rate,
        echo_events_per_s=echo_rate,
        unary_p50_ms=p50,
        unary_p99_ms=p99,
        echo_p50_ms=echo_p50,
        echo_p99_ms=echo_p99,
        unary_in_flight=n,
        unary_errors=load.errors + dedicated.errors,
    )
    b.rows += [
        Row("unary_events_per_s", service_rate, "ev/s", f"echo server {echo_rate:,.0f} ev/s"),
        Row("ingest_unary_ratio", ratio(service_rate, echo_rate), "", "service / echo", TARGET),
        Row(
            "ingest_unary_ratio_dedicated",
            dedicated_ratio,
            "",
            "the same, the server under test on a core of its own",
        ),
        Row("unary_p50_ms", p50, "ms", f"echo {echo_p50:.1f} ms"),
        Row("unary_p99_ms", p99, "ms", f"echo {echo_p99:.1f} ms"),
    ]
    b.results["unary_event_log_catchup_s"] = await b.settle(dispatcher=False, label="unary")


async def _pair(b: Bench, name: str, *, pin: bool) -> tuple[Load, Load]:
    """The echo server, then the service, each loaded with the same requests."""
    requests = _requests(f"{b.tag}-unary-{name}", b.cfg.unary_events)
    warm = _requests(f"{b.tag}-uwarm-{name}", WARMUP)
    echo = await _measure(
        b, "echo server", b.echo, b.stack.helper("echo-server").pid, warm, requests, pin
    )
    load = await _measure(b, "service", b.service, b.stack.service.pid, warm, requests, pin)
    return echo, load


async def _measure(
    b: Bench, label: str, stub: Any, pid: int, warm: list[Any], requests: list[Any], pin: bool
) -> Load:
    n = b.cfg.unary_in_flight
    layout = "on a core of its own" if pin else "all processes sharing the cores"
    layout_cm = cpus.dedicated_core([pid], b.stack.all_pids()) if pin else contextlib.nullcontext()
    with layout_cm:
        warm_load = await clients.track_unary(stub, warm, n)
        load = await clients.track_unary(stub, requests, n)
    if stub is b.service:
        b.queued += warm_load.ids + load.ids
    b.note(
        f"{label}, {layout}, TrackEvent x{n} in flight: {load.events:,} in {load.seconds:.2f} s"
        f" = {rate(load.events, load.seconds):,.0f}/s, p50"
        f" {percentile(load.latencies_s, 50) * 1000:.1f} ms, p99"
        f" {percentile(load.latencies_s, 99) * 1000:.1f} ms, errors {load.errors}"
        f" {load.error_samples}"
    )
    return load
