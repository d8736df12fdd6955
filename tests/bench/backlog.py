"""A large backlog of events published straight to the work stream, as the
service's fast path would have published them. Building a million Deliveries
takes about a minute, so they are generated once into a cache file
(`.data/bench/`, reused by later runs: ids only need to be unique per stack)."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Iterator
from pathlib import Path

from marketing_runtime import topology
from marketing_runtime.publisher import BatchPublisher
from nats.aio.client import Client

from tests.bench import payloads

CACHE_DIR = Path(".data/bench")
PUBLISH_BATCH = 1000
PUBLISH_IN_FLIGHT = 4
PUBLISH_TIMEOUT_S = 60.0
_LENGTHS = struct.Struct("<HI")  # message id length, message length


def _path(tag: str, count: int) -> Path:
    return CACHE_DIR / f"{tag}-{count}.bin"


def _generate(path: Path, tag: str, count: int, orders: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        for n in range(count):
            event = payloads.event(tag, n, orders=orders)
            data = payloads.delivery_bytes(event)
            msg_id = event.event_id.encode()
            out.write(_LENGTHS.pack(len(msg_id), len(data)) + msg_id + data)
    partial.rename(path)  # a run killed while generating leaves no half file


def _read(path: Path) -> Iterator[tuple[str, bytes]]:
    data = memoryview(path.read_bytes())
    at = 0
    while at < len(data):
        id_len, msg_len = _LENGTHS.unpack_from(data, at)
        at += _LENGTHS.size
        msg_id = bytes(data[at : at + id_len]).decode()
        at += id_len
        yield msg_id, bytes(data[at : at + msg_len])
        at += msg_len


async def publish(nc: Client, tag: str, count: int, *, orders: bool = True) -> float:
    """Publish `count` events (ids `<tag>-<n>`; a third of them orders, unless not
    `orders`) to the work stream; seconds it took (the generation, when the cache
    is cold, is not counted)."""
    path = _path(tag if orders else f"{tag}-views", count)
    if not path.exists():
        started = time.perf_counter()
        await asyncio.to_thread(_generate, path, tag, count, orders)
        print(f"  generated {path} in {time.perf_counter() - started:.0f} s", flush=True)
    messages = list(_read(path))
    publisher = BatchPublisher(nc)
    batches = iter(range(0, len(messages), PUBLISH_BATCH))
    stored = 0

    async def worker() -> None:
        nonlocal stored
        for start in batches:  # shared iterator: each batch is taken once
            acks = await publisher.publish(
                topology.EVENTS_SUBJECT, messages[start : start + PUBLISH_BATCH], PUBLISH_TIMEOUT_S
            )
            stored += sum(ack is not None for ack in acks)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(PUBLISH_IN_FLIGHT)))
    seconds = time.perf_counter() - started
    assert stored == len(messages), f"only {stored} of {len(messages)} stored"
    return seconds


async def purge(nc: Client) -> None:
    """Drop what is left of the events on the work stream (for every consumer)."""
    await nc.jetstream().purge_stream(topology.WORK_STREAM, subject=topology.EVENTS_SUBJECT)


async def drop_results(nc: Client) -> None:
    """Drop the delivery results still waiting for the service. The backlog's
    events were published straight to the bus, with no event-log rows, so the
    result recorder would ask again for each of their results every second
    for an hour (MAX_RESULT_WAIT: it waits for the event-log writer) and load
    the phases after this one (figure 10's timers were 9.9 s late behind
    them). The phase's few unsubscribes may lose a result still waiting too:
    their outbox rows then stay IN_FLIGHT in the bench's database, which no
    later phase counts."""
    await nc.jetstream().purge_stream(topology.RESULTS_STREAM, subject=topology.RESULTS_SUBJECT)
