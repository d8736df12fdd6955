"""The bus side of the contact-sync tests: a service database and bus for the
driver, reading the chunks it published (as the dispatcher's consumer does)
and reporting chunk results (as the dispatcher publishes them)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer
from sqlalchemy import text

from service.contact_sync import rules
from service.storage.database import Database
from service.storage.models import Contact, ContactSync
from service.workers.sync_result_recorder import sync_result_recorder


@dataclass
class SyncBus:
    db: Database
    bus: Bus
    chunks_in: PullConsumer
    results_in: PullConsumer

    async def add_contacts(self, count: int, **fields: Any) -> list[uuid.UUID]:
        """`count` contacts; their ids in id order (the sync's order)."""
        now = utc_now()
        rows = [
            Contact(
                id=uuid.uuid4(),
                email=f"sync-{uuid.uuid4().hex[:12]}@example.com",
                first_name="Ada",
                created_at=now,
                updated_at=now,
                **fields,
            )
            for _ in range(count)
        ]
        async with self.db.transaction() as session:
            session.add_all(rows)
        return sorted(row.id for row in rows)

    async def start(self) -> uuid.UUID:
        return (await rules.start_sync(self.db, request_id="", now=utc_now())).id

    async def sync(self, sync_id: uuid.UUID) -> ContactSync:
        async with self.db.transaction() as session:
            row = await session.get(ContactSync, sync_id)
            assert row is not None
            return row

    async def sql(self, statement: str, **params: Any) -> None:
        async with self.db.transaction() as session:
            await session.execute(text(statement), params)

    async def take_chunks(self, expected: int) -> list[bus_pb2.ContactSyncChunk]:
        """What the dispatcher's consumer receives (and acks): `expected` chunks,
        and then no more within a short wait."""
        messages = await self.chunks_in.fetch(expected + 1, wait_s=2, linger_s=0.3)
        for msg in messages:
            await msg.ack()
        chunks = []
        for msg in messages:
            chunk = bus_pb2.ContactSyncChunk()
            chunk.ParseFromString(msg.data)
            chunks.append(chunk)
        assert len(chunks) == expected, [c.sequence for c in chunks]
        return chunks

    async def report(self, *results: bus_pb2.ContactSyncChunkResult) -> None:
        """Publish results as the dispatcher does, then let the service's
        results consumer take them."""
        assert self.bus.js is not None
        for result in results:
            await self.bus.js.publish(topology.SYNC_RESULTS_SUBJECT, result.SerializeToString())
        messages = await self.results_in.fetch(len(results), wait_s=5, linger_s=0.3)
        assert len(messages) == len(results)
        await sync_result_recorder(self.db, utc_now).handle(messages)


def imported(
    chunk: bus_pb2.ContactSyncChunk,
    *,
    failures: Sequence[tuple[str, str]] = (),
    error: str = "",
    jobs: Sequence[str] = ("job-1",),
) -> bus_pb2.ContactSyncChunkResult:
    """The result of a chunk the provider imported but for `failures`."""
    return bus_pb2.ContactSyncChunkResult(
        sync_id=chunk.sync_id,
        sequence=chunk.sequence,
        imported=0 if error else len(chunk.contacts) - len(failures),
        failures=[bus_pb2.ContactSyncFailure(email=e, reason=r) for e, r in failures],
        error=error,
        job_ids=list(jobs),
    )


def contact_ids(chunks: Sequence[bus_pb2.ContactSyncChunk]) -> list[uuid.UUID]:
    return [uuid.UUID(c.profile.contact_id) for chunk in chunks for c in chunk.contacts]


@asynccontextmanager
async def sync_bus(database_url: str, nats_url: str) -> AsyncIterator[SyncBus]:
    db = Database(database_url)
    bus = Bus(nats_url, name="test-contact-sync")
    bus.start()
    assert await bus.wait_ready(30)
    assert bus.nc is not None
    chunks_in = PullConsumer(bus.nc, stream=topology.SYNC_STREAM, durable=topology.DISPATCH_SYNC)
    results_in = PullConsumer(
        bus.nc, stream=topology.RESULTS_STREAM, durable=topology.SERVICE_SYNC_RESULTS
    )
    try:
        yield SyncBus(db, bus, chunks_in, results_in)
    finally:
        await chunks_in.close()
        await results_in.close()
        await bus.close()
        await db.close()
