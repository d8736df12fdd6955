"""Records the dispatcher's chunk results of a full contact sync
(`marketing.results.sync`): counts, the people the provider refused, and the
sync's end once its last chunk is reported."""

from __future__ import annotations

from marketing.bus.v1 import bus_pb2
from marketing_runtime.clock import Clock
from sqlalchemy.ext.asyncio import AsyncSession

from service.contact_sync import progress
from service.storage.database import Database, after_commit
from service.workers.batch_recorder import BatchRecorder


def sync_result_recorder(
    db: Database, clock: Clock
) -> BatchRecorder[bus_pb2.ContactSyncChunkResult]:
    async def record(session: AsyncSession, result: bus_pb2.ContactSyncChunkResult) -> None:
        await progress.record_result(session, result, clock())

    return BatchRecorder(
        db,
        "sync result recorder",
        bus_pb2.ContactSyncChunkResult,
        record,
        in_transaction=lambda session: after_commit(session, progress.notify_result),
    )
