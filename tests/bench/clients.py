"""Load generators over grpc.aio and the generated stubs: batches with a few in
flight, unary calls with many in flight (closed loop), and an open loop at a
fixed rate that never waits for a reply before the next send."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from marketing.v1 import service_pb2 as pb
from marketing.v1 import service_pb2_grpc

from service.settings import DEFAULT_MAX_MESSAGE_BYTES

RPC_TIMEOUT_S = 60.0


def channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ],
    )


_CALLED = (
    "TrackEvent",
    "TrackEvents",
    "Unsubscribe",
    "StartContactSync",
    "GetContactSync",
    "UpsertContact",
    "CreateSegment",
    "PreviewSegment",
    "NotifyBackInStock",
    "GetDashboardMetrics",
    "CreateCampaign",
    "ScheduleCampaign",
    "GetCampaign",
    "ChooseAbTestWinner",
)


class _Stub:
    """The calls the load generators make, each sending the bearer token as
    call metadata (a client interceptor would cost this process time per call)."""

    def __init__(self, stub: Any, token: str) -> None:
        metadata = (("authorization", f"Bearer {token}"),)
        for method in _CALLED:
            setattr(self, method, functools.partial(getattr(stub, method), metadata=metadata))


def stub(ch: grpc.aio.Channel, token: str) -> Any:
    return _Stub(service_pb2_grpc.MarketingServiceStub(ch), token)


@dataclass
class Load:
    """What a load run did: accepted events, errors, wall time, call latencies."""

    events: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)  # event ids the service accepted as new
    error_samples: list[str] = field(default_factory=list)

    def failed(self, exc: Exception) -> None:
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(repr(exc)[:300])


async def track_batches(
    service: Any, requests: Iterable[pb.TrackEventsRequest], in_flight: int
) -> Load:
    """TrackEvents for every request, `in_flight` calls at a time."""
    load = Load()
    queue: Iterator[pb.TrackEventsRequest] = iter(requests)

    async def worker() -> None:
        for request in queue:  # shared iterator: each request is taken once
            started = time.perf_counter()
            try:
                reply = await service.TrackEvents(request, timeout=RPC_TIMEOUT_S)
            except grpc.aio.AioRpcError as exc:
                load.failed(exc)
                continue
            load.latencies_s.append(time.perf_counter() - started)
            new = [r.event_id for r in reply.results if not r.duplicate]
            load.events += len(new)
            load.ids += new

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    load.seconds = time.perf_counter() - started
    return load


async def track_unary(service: Any, requests: list[pb.TrackEventRequest], in_flight: int) -> Load:
    """TrackEvent for every request, `in_flight` calls at a time (closed loop).
    Counts every successful reply (the echo server reports no duplicates)."""
    load = Load()
    queue = iter(requests)

    async def worker() -> None:
        for request in queue:
            started = time.perf_counter()
            try:
                reply = await service.TrackEvent(request, timeout=RPC_TIMEOUT_S)
            except grpc.aio.AioRpcError as exc:
                load.failed(exc)
                continue
            load.latencies_s.append(time.perf_counter() - started)
            load.events += 1
            if reply.event_id and not reply.duplicate:
                load.ids.append(reply.event_id)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    load.seconds = time.perf_counter() - started
    return load


@dataclass
class OpenLoop:
    load: Load
    sent_at: dict[str, float]  # event id -> wall-clock time just before the send
    offered_per_s: float  # achieved send rate


async def open_loop(service: Any, requests: list[pb.TrackEventRequest], rate: float) -> OpenLoop:
    """Send request i at start + i / rate, whatever the replies do."""
    load = Load()
    sent_at: dict[str, float] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def send(request: pb.TrackEventRequest) -> None:
        started = time.perf_counter()
        try:
            await service.TrackEvent(request, timeout=RPC_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            load.failed(exc)
            sent_at.pop(request.event.event_id, None)
            return
        load.latencies_s.append(time.perf_counter() - started)
        load.events += 1

    start = time.perf_counter()
    for i, request in enumerate(requests):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at[request.event.event_id] = time.time()
        task = asyncio.create_task(send(request))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sending_s = time.perf_counter() - start
    await asyncio.gather(*list(tasks))
    load.seconds = time.perf_counter() - start
    offered = (len(requests) - 1) / sending_s if sending_s > 0 else float("nan")
    return OpenLoop(load, sent_at, offered)
