"""Records the dispatcher's chunk results of a full contact sync
(`marketing.results.sync`): counts, the people the provider refused, and the
sync's end once its last chunk is reported."""

from __future__ import annotations

import logging

from google.protobuf.message import DecodeError
from marketing.bus.v1 import bus_pb2
from marketing_runtime.clock import Clock
from nats.aio.msg import Msg

from service.contact_sync import progress
from service.errors import UnavailableError
from service.storage.database import Database, after_commit
from service.workers.event_log_writer import DB_RETRY_DELAY_S

log = logging.getLogger(__name__)


class SyncResultRecorder:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def handle(self, messages: list[Msg]) -> None:
        results = [(msg, _parse(msg)) for msg in messages]
        try:
            async with self._db.transaction() as session:
                for _, result in results:
                    if result is not None:
                        await progress.record_result(session, result, self._clock())
                after_commit(session, progress.notify_result)
        except UnavailableError as exc:
            log.warning("sync result recorder: %s", exc)
            for msg in messages:
                await msg.nak(delay=DB_RETRY_DELAY_S)
            return
        for msg, _ in results:
            await msg.ack()


def _parse(msg: Msg) -> bus_pb2.ContactSyncChunkResult | None:
    """The result in `msg`; None (logged, then acked) for bytes that are not one."""
    result = bus_pb2.ContactSyncChunkResult()
    try:
        result.ParseFromString(msg.data)
    except DecodeError as exc:
        log.warning("sync result recorder: unreadable chunk result dropped: %s", exc)
        return None
    return result
