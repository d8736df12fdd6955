"""Batch acknowledgement against a real nats-server: every message of the batch
is settled, none comes back. (It frames +ACK itself through two private
nats-py calls and Msg._client; this fails loudly if an upgrade changes them.)"""

from __future__ import annotations

import asyncio
import uuid

import nats
from marketing_runtime.acks import ack_all
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, StreamConfig

from tests.harness import eventually
from tests.processes import NatsServer


def test_a_fetched_batch_is_acknowledged_in_one_go(nats_server: NatsServer) -> None:
    async def main() -> None:
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        name = f"ACKS_{uuid.uuid4().hex[:8]}"
        await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.x"]))
        try:
            for i in range(120):
                await js.publish(f"{name}.x", str(i).encode())
            config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=1.0)
            sub = await js.pull_subscribe(f"{name}.x", durable="acks", config=config)
            batch = await sub.fetch(100, timeout=5)
            await ack_all(batch)
            await ack_all([])

            async def settled() -> ConsumerInfo | None:
                info = await js.consumer_info(name, "acks")
                return info if info.num_ack_pending == 0 else None

            # Nothing left pending: nothing can come back once ack_wait passes.
            info = await eventually(settled, timeout_s=10)
            assert (info.num_redelivered, info.num_pending) == (0, 20)
            rest = await sub.fetch(100, timeout=2)
            assert [m.data for m in rest] == [str(i).encode() for i in range(100, 120)]
        finally:
            await js.delete_stream(name)
            await nc.close()

    asyncio.run(main())
