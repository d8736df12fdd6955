"""Figure 2: TrackEvent, many calls in flight, against a no-op grpc.aio server in
its own process (same options, same event loop) called by the same client code
with the same request bytes.

Measured with all processes sharing the cores, the headline, and with the
server under test (the echo server, then the service) on a core of its own.
The echo server's rate moves by a fifth from one measurement to the next on
this machine, so each layout takes `unary_rounds` turns, echo server then
service, and reports the median of the per-turn ratios."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from marketing.v1 import service_pb2 as pb

from tests.bench import clients, cpus, payloads
from tests.bench.clients import Load
from tests.bench.context import Bench
from tests.bench.report import Row, Target
from tests.bench.stats import percentile, rate, ratio

TARGET = Target(">=", 0.5)
WARMUP = 500


@dataclass
class Turn:
    echo: Load
    service: Load

    @property
    def ratio(self) -> float:
        return ratio(
            rate(self.service.events, self.service.seconds),
            rate(self.echo.events, self.echo.seconds),
        )


def _requests(tag: str, count: int) -> list[pb.TrackEventRequest]:
    return [pb.TrackEventRequest(event=e) for e in payloads.events(tag, count)]


async def run(b: Bench) -> None:
    assert b.stack.dispatcher is None, "ingest is measured with the dispatcher stopped"
    shared = await _turns(b, "shared", pin=False)
    dedicated = await _turns(b, "dedicated", pin=True)
    median = _median_turn(shared)
    echo, load = median.echo, median.service
    echo_rate, service_rate = rate(echo.events, echo.seconds), rate(load.events, load.seconds)
    shared_ratios = [t.ratio for t in shared]
    dedicated_ratio = _median_turn(dedicated).ratio
    p50 = percentile(load.latencies_s, 50) * 1000
    p99 = percentile(load.latencies_s, 99) * 1000
    echo_p50 = percentile(echo.latencies_s, 50) * 1000
    echo_p99 = percentile(echo.latencies_s, 99) * 1000
    b.results.update(
        ingest_unary_ratio=median.ratio,
        ingest_unary_ratios=shared_ratios,
        ingest_unary_ratio_dedicated=dedicated_ratio,
        unary_events_per_s=service_rate,
        echo_events_per_s=echo_rate,
        unary_p50_ms=p50,
        unary_p99_ms=p99,
        echo_p50_ms=echo_p50,
        echo_p99_ms=echo_p99,
        unary_in_flight=b.cfg.unary_in_flight,
        unary_errors=sum(t.service.errors for t in (*shared, *dedicated)),
    )
    turns = ", ".join(f"{r:.3f}" for r in shared_ratios)
    b.rows += [
        Row("unary_events_per_s", service_rate, "ev/s", f"echo server {echo_rate:,.0f} ev/s"),
        Row(
            "ingest_unary_ratio",
            median.ratio,
            "",
            f"service / echo, median of {len(shared)} turns ({turns})",
            TARGET,
        ),
        Row(
            "ingest_unary_ratio_dedicated",
            dedicated_ratio,
            "",
            "the same, the server under test on a core of its own",
        ),
        Row("unary_p50_ms", p50, "ms", f"echo {echo_p50:.1f} ms"),
        Row("unary_p99_ms", p99, "ms", f"echo {echo_p99:.1f} ms"),
    ]


def _median_turn(turns: list[Turn]) -> Turn:
    """The turn whose ratio is the median (the lower middle one when even)."""
    ranked = sorted(turns, key=lambda t: t.ratio)
    return ranked[(len(ranked) - 1) // 2]


async def _turns(b: Bench, name: str, *, pin: bool) -> list[Turn]:
    """`unary_rounds` turns of the echo server, then the service, each loaded
    with the same requests (fresh event ids every turn). After each service
    turn the bus workers catch up, so no measurement shares the machine with
    the previous turn's event-log writes."""
    echo_pid = b.stack.helper("echo-server").pid
    warm = _requests(f"{b.tag}-uwarm-{name}", WARMUP)
    await _measure(b, "echo server (warm-up)", b.echo, echo_pid, warm, pin)
    await _measure(b, "service (warm-up)", b.service, b.stack.service.pid, warm, pin)
    turns = []
    for n in range(b.cfg.unary_rounds):
        requests = _requests(f"{b.tag}-unary-{name}-{n}", b.cfg.unary_events)
        echo = await _measure(b, "echo server", b.echo, echo_pid, requests, pin)
        service = await _measure(b, "service", b.service, b.stack.service.pid, requests, pin)
        turns.append(Turn(echo, service))
        catchup_s = await b.settle(dispatcher=False, label=f"unary turn {n + 1}, {name}")
        b.results["unary_event_log_catchup_s"] = max(
            catchup_s, b.results.get("unary_event_log_catchup_s", 0.0)
        )
    return turns


async def _measure(
    b: Bench, label: str, stub: Any, pid: int, requests: list[Any], pin: bool
) -> Load:
    n = b.cfg.unary_in_flight
    layout = "on a core of its own" if pin else "all processes sharing the cores"
    layout_cm = cpus.dedicated_core([pid], b.stack.all_pids()) if pin else contextlib.nullcontext()
    with layout_cm:
        load = await clients.track_unary(stub, requests, n)
    if stub is b.service:
        b.queued += load.ids
    b.note(
        f"{label}, {layout}, TrackEvent x{n} in flight: {load.events:,} in {load.seconds:.2f} s"
        f" = {rate(load.events, load.seconds):,.0f}/s, p50"
        f" {percentile(load.latencies_s, 50) * 1000:.1f} ms, p99"
        f" {percentile(load.latencies_s, 99) * 1000:.1f} ms, errors {load.errors}"
        f" {load.error_samples}"
    )
    return load
