"""A dispatcher replica (`dispatcher.main.Dispatcher`, as `marketing-dispatcher`
runs it) delivers a full sync's chunks: its sync loop fetches them from the
`dispatcher-sync` consumer, imports them at the sandbox and reports each on
`marketing.results.sync`. Its waits are on the virtual clock of test_replica."""

from __future__ import annotations

import asyncio
import uuid

import nats
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.envelope import MSG_ID_HEADER
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from dispatcher.sandbox import Sandbox
from tests.dispatcher.providers.klaviyo.test_imports import stored_profile
from tests.dispatcher.test_replica import Site, _run, _settle
from tests.processes import NatsServer

JOBS = "/api/profile-bulk-import-jobs"


def test_a_replica_imports_a_sync_chunk_and_reports_it(
    own_nats: NatsServer, sandbox: Sandbox
) -> None:
    site = Site(own_nats.url, sandbox)
    sync_id = str(uuid.uuid4())
    emails = [f"sync-{i}-{sync_id[:8]}@example.com" for i in range(3)]

    async def scenario(js: JetStreamContext) -> None:
        results: list[bus_pb2.ContactSyncChunkResult] = []

        async def record(msg: Msg) -> None:
            results.append(bus_pb2.ContactSyncChunkResult.FromString(msg.data))

        observer = await nats.connect(own_nats.url)
        await observer.subscribe(topology.SYNC_RESULTS_SUBJECT, cb=record)
        replica = site.replica().serve()
        chunk = bus_pb2.ContactSyncChunk(sync_id=sync_id, sequence=1)
        for email in emails:
            chunk.contacts.add().profile.email = email
        headers = {MSG_ID_HEADER: f"{sync_id}:1"}
        await js.publish(topology.SYNC_CHUNKS_SUBJECT, chunk.SerializeToString(), headers=headers)
        await site.clock.advance_until(lambda: bool(results), _real_pause, limit_s=3600)

        (result,) = results
        assert (result.sync_id, result.sequence, result.imported, result.error) == (
            sync_id,
            1,
            3,
            "",
        )
        assert len(sandbox.requests(JOBS)) == 1
        assert all(stored_profile(sandbox, email) for email in emails)
        info = await js.consumer_info(topology.SYNC_STREAM, topology.DISPATCH_SYNC)
        assert (info.num_pending, info.num_ack_pending) == (0, 0)
        assert await replica.stop() == 0
        await observer.close()

    _run(own_nats.url, scenario)


async def _real_pause() -> None:
    """The sandbox runs an import job in real time (half a second): give each
    virtual wake-up some of it."""
    await _settle()
    await asyncio.sleep(0.02)
