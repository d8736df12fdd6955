"""The benchmark's own NATS connection: the raw-publish baseline on a scratch
stream, and waiting for the service's consumers to catch up between phases."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import nats
from marketing_runtime import topology
from marketing_runtime.envelope import MSG_ID_HEADER
from marketing_runtime.publisher import BatchPublisher
from nats.aio.client import Client
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

SCRATCH_STREAM = "BENCH_SCRATCH"
SCRATCH_SUBJECT = "bench.scratch"
PUBLISH_TIMEOUT_S = 30.0


async def connect(url: str) -> Client:
    return await nats.connect(url, name="marketing-bench")


async def raw_publish(nc: Client, payloads: Sequence[tuple[str, bytes]]) -> float:
    """Pipelined js.publish_async of (message id, bytes) to a scratch stream set up
    like the work stream (file storage, duplicate window); seconds until all acks."""
    js = nc.jetstream()
    async with _scratch_stream(nc):
        started = time.perf_counter()
        futures = [
            await js.publish_async(SCRATCH_SUBJECT, data, headers={MSG_ID_HEADER: msg_id})
            for msg_id, data in payloads
        ]
        acks = await asyncio.gather(*futures)
        seconds = time.perf_counter() - started
    stored = sum(not ack.duplicate for ack in acks)
    assert stored == len(payloads), f"only {stored} of {len(payloads)} stored"
    return seconds


async def framed_publish(
    nc: Client, payloads: Sequence[tuple[str, bytes]], batch_size: int, in_flight: int
) -> float:
    """The same messages through the service's own BatchPublisher (pre-framed
    HPUB buffers, acks matched by token), in batches shaped like the TrackEvents
    load: what the service's publishing costs without gRPC or validation."""
    publisher = BatchPublisher(nc)
    batches = iter(range(0, len(payloads), batch_size))
    stored = 0

    async def worker() -> None:
        nonlocal stored
        for start in batches:  # shared iterator: each batch is taken once
            acks = await publisher.publish(
                SCRATCH_SUBJECT, payloads[start : start + batch_size], PUBLISH_TIMEOUT_S
            )
            stored += sum(ack is not None and not ack.duplicate for ack in acks)

    # The publisher's ack subscription stays on `nc` (idle) until it closes.
    async with _scratch_stream(nc):
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        seconds = time.perf_counter() - started
    assert stored == len(payloads), f"only {stored} of {len(payloads)} stored"
    return seconds


@contextlib.asynccontextmanager
async def _scratch_stream(nc: Client) -> AsyncIterator[None]:
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(
            name=SCRATCH_STREAM,
            subjects=[SCRATCH_SUBJECT],
            retention=RetentionPolicy.LIMITS,
            duplicate_window=topology.DUPLICATE_WINDOW_S,
            storage=StorageType.FILE,
        )
    )
    try:
        yield
    finally:
        await js.delete_stream(SCRATCH_STREAM)


async def backlog(nc: Client, consumers: Sequence[tuple[str, str]]) -> int:
    """Messages not yet acknowledged by these (stream, durable) consumers."""
    js = nc.jetstream()
    total = 0
    for stream, durable in consumers:
        info = await js.consumer_info(stream, durable)
        total += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
    return total


SERVICE_CONSUMERS = (
    (topology.WORK_STREAM, topology.SERVICE_EVENT_LOG),
    (topology.RESULTS_STREAM, topology.SERVICE_RESULTS),
)
DISPATCH_CONSUMERS = (
    (topology.WORK_STREAM, topology.DISPATCH_EVENTS),
    (topology.WORK_STREAM, topology.DISPATCH_CONTACTS),
    (topology.WORK_STREAM, topology.DISPATCH_ENROLMENTS),
)


async def settle(
    nc: Client, consumers: Sequence[tuple[str, str]], timeout_s: float, poll_s: float = 0.25
) -> float:
    """Wait until the consumers have nothing left; seconds waited (NaN on timeout)."""
    started = time.perf_counter()
    while await backlog(nc, consumers) > 0:
        if time.perf_counter() - started > timeout_s:
            return float("nan")
        await asyncio.sleep(poll_s)
    return time.perf_counter() - started
