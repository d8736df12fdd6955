"""Declaring the topology again (each reconnect of the service or a dispatcher)
leaves an existing consumer's ack wait as the dispatcher set it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from marketing_runtime import topology

from tests.processes import NatsServer


@pytest.fixture
def fresh_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


def test_declaring_again_keeps_the_events_consumers_ack_wait(fresh_nats: NatsServer) -> None:
    async def scenario() -> tuple[float | None, float | None]:
        nc = await nats.connect(fresh_nats.url)
        js = nc.jetstream()
        await topology.declare(js)
        created = await js.consumer_info(topology.WORK_STREAM, topology.DISPATCH_EVENTS)
        created.config.ack_wait = 7.0  # as a dispatcher with MARKETING_EVENT_ACK_WAIT_S=7 sets it
        await js.add_consumer(topology.WORK_STREAM, created.config)
        await topology.declare(js)  # a service reconnecting
        after = await js.consumer_info(topology.WORK_STREAM, topology.DISPATCH_EVENTS)
        await nc.close()
        return created.config.ack_wait, after.config.ack_wait

    set_to, after_declare = asyncio.run(scenario())
    assert (set_to, after_declare) == (7.0, 7.0)
