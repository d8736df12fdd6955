"""The contact sync driver: while a sync runs, publishes its contacts to
`marketing.sync.chunks` a chunk at a time, in contact id order, and keeps its
place in the sync's row.

Each chunk is first written down as pending (its sequence and the last
contact id it covers), then published with Nats-Msg-Id `<sync_id>:<sequence>`,
then the checkpoint moves past it. A driver killed in between rebuilds the
same chunk from the same range and publishes it again under the same id,
which JetStream drops as a duplicate: nothing is skipped, nothing counted
twice. Two bounds keep memory flat and the bus from holding every contact:
at most `max_importing` chunks are published and not yet imported (waiting
for or in a dispatcher's import; the dispatchers' consumer says how many),
and at most `max_in_flight` are published and not yet reported (the rest
are imported and wait for their consent calls, small, in the stream: the
provider's consent endpoints may have spent their minute, and imports go on
meanwhile).
One driver runs among the service replicas (a PostgreSQL advisory lock
elects it, as for the outbox relay); the guarded writes keep even two safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from marketing_runtime import topology
from marketing_runtime.clock import Clock, utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER
from nats.errors import Error as NatsError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from service.contact_sync import chunks, progress, rules
from service.settings import DEFAULT_SYNC_MAX_IMPORTING, DEFAULT_SYNC_MAX_IN_FLIGHT
from service.storage.database import Database
from service.storage.models import ContactSync

log = logging.getLogger(__name__)
DRIVER_LOCK_KEY = 0x73796E64  # "synd": the advisory lock that elects the driver
DEFAULT_CHUNK_CONTACTS = 1000
IDLE_POLL_S = 1.0
# While the dispatchers import what is published: they take a batch a second or so.
IMPORTING_POLL_S = 0.1
# Far beyond a chunk's import (a job is polled for up to an hour by default).
DEFAULT_CHUNK_DEADLINE_S = 2 * 3600.0
RETRY_S = 1.0
ACK_TIMEOUT_S = 10.0
# A chunk's bytes stay this far under the server's max_payload (headers, framing).
PAYLOAD_HEADROOM = 4096


class Step(enum.Enum):
    """What one step of the driver did: WORKED means step again at once."""

    WORKED = "worked"
    WAITING = "waiting"  # nothing to do until a result, a start or a cancel
    IMPORTING = "importing"  # nothing to do until the dispatchers import more


@dataclass(frozen=True)
class DriverSettings:
    chunk_contacts: int = DEFAULT_CHUNK_CONTACTS
    max_in_flight: int = DEFAULT_SYNC_MAX_IN_FLIGHT
    max_importing: int = DEFAULT_SYNC_MAX_IMPORTING
    idle_poll_s: float = IDLE_POLL_S
    # A chunk with no result this long after it was published is given up.
    chunk_deadline_s: float = DEFAULT_CHUNK_DEADLINE_S


DEFAULT_DRIVER_SETTINGS = DriverSettings()


class SyncDriver:
    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        clock: Clock = utc_now,
        settings: DriverSettings = DEFAULT_DRIVER_SETTINGS,
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._settings = settings
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        rules.on_change(self._wake.set)
        progress.on_result(self._wake.set)

    async def run(self) -> None:
        """Drive until `stop()`; stand by while another replica holds the lock."""
        while not self._stopping.is_set():
            try:
                async with self._db.engine.connect() as conn:
                    if await conn.scalar(text(f"SELECT pg_try_advisory_lock({DRIVER_LOCK_KEY})")):
                        log.info("contact sync driver: elected")
                        await self._drive_holding_lock(conn)
                        continue
            except Exception as exc:
                log.warning("contact sync driver interrupted: %s", exc)
            await self._pause(RETRY_S)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        rules.remove_on_change(self._wake.set)
        progress.remove_on_result(self._wake.set)

    async def _drive_holding_lock(self, conn: AsyncConnection) -> None:
        try:
            await conn.commit()  # the lock is the session's; no transaction stays open
            while not self._stopping.is_set():
                step = await self.step()
                if step is Step.WAITING:
                    await self._pause(self._settings.idle_poll_s)
                elif step is Step.IMPORTING:
                    await self._pause(min(IMPORTING_POLL_S, self._settings.idle_poll_s))
        except BaseException:
            await conn.invalidate()  # the lock goes with the connection
            raise
        await conn.execute(text(f"SELECT pg_advisory_unlock({DRIVER_LOCK_KEY})"))

    async def step(self) -> Step:
        """Do the next thing the running sync needs, if any."""
        async with self._db.transaction() as session:
            sync = await rules.running_sync(session)
        if sync is None:
            return Step.WAITING
        if sync.published_chunks > sync.reported_chunks and await self._give_up_overdue(sync):
            return Step.WORKED
        if sync.pending_sequence is not None:
            return await self._publish_pending(sync)
        if sync.reached_end or sync.cancel_requested_at is not None:
            return await self._settle(sync)
        in_flight = sync.published_chunks - sync.reported_chunks
        if in_flight >= self._settings.max_in_flight:
            return Step.WAITING
        if in_flight >= self._settings.max_importing and not await self._may_import_more():
            return Step.IMPORTING
        return await self._publish_next(sync)

    async def _may_import_more(self) -> bool:
        """Whether fewer than `max_importing` chunks wait for or are in the
        dispatchers' import (those past it wait for their consent calls)."""
        js = self._bus.js
        if js is None:
            return False
        try:
            info = await js.consumer_info(topology.SYNC_STREAM, topology.DISPATCH_SYNC)
        except (NatsError, TimeoutError) as exc:  # asked again at the next step
            log.warning("contact sync driver: the dispatchers' consumer is unknown: %r", exc)
            return False
        importing = (info.num_pending or 0) + (info.num_ack_pending or 0)
        return importing < self._settings.max_importing

    async def _give_up_overdue(self, sync: ContactSync) -> bool:
        deadline = timedelta(seconds=self._settings.chunk_deadline_s)
        async with self._db.transaction() as session:
            given_up = await progress.give_up_overdue(session, sync.id, deadline, self._clock())
        if given_up:
            log.warning("contact sync %s: %d chunks had no result in time", sync.id, given_up)
        return given_up > 0

    async def _settle(self, sync: ContactSync) -> Step:
        """Nothing more to send: end the sync once the chunks in flight are
        reported (the results recorder ends it too, on the last result)."""
        async with self._db.transaction() as session:
            if await progress.settle(session, sync.id, self._clock()):
                log.info("contact sync %s ended", sync.id)
                return Step.WORKED
        return Step.WAITING  # for the results of the chunks in flight

    async def _publish_next(self, sync: ContactSync) -> Step:
        if self._bus.nc is None:
            return Step.WAITING
        budget = self._bus.nc.max_payload - PAYLOAD_HEADROOM
        async with self._db.transaction() as session:
            rows = await chunks.read_contacts(
                session, after=sync.checkpoint, upto=None, limit=self._settings.chunk_contacts
            )
            if not rows:
                await progress.mark_reached_end(session, sync.id, self._clock())
                return Step.WORKED
            sequence = sync.published_chunks + 1
            chunk = await chunks.build_chunk(session, sync.id, sequence, rows, budget=budget)
            assert chunk.upper is not None  # built of one row at least
            if not await progress.mark_pending(
                session, sync.id, sequence, chunk.upper, chunk.count, self._clock()
            ):
                return Step.WORKED  # the sync changed under us: look again
        return await self._publish(sync.id, sequence, chunk)

    async def _publish_pending(self, sync: ContactSync) -> Step:
        """Rebuild the chunk a driver wrote down and may have published."""
        sequence = sync.pending_sequence
        assert sequence is not None
        if self._bus.nc is None:
            return Step.WAITING
        budget = self._bus.nc.max_payload - PAYLOAD_HEADROOM
        async with self._db.transaction() as session:
            rows = await chunks.read_contacts(
                session,
                after=sync.checkpoint,
                upto=sync.pending_upper,
                limit=self._settings.chunk_contacts,
            )
            chunk = await chunks.build_chunk(session, sync.id, sequence, rows, budget=budget)
            await self._narrow_pending(session, sync, chunk)
        return await self._publish(sync.id, sequence, chunk)

    async def _narrow_pending(
        self, session: AsyncSession, sync: ContactSync, chunk: chunks.BuiltChunk
    ) -> None:
        """Contacts created since the crash (ids are random) may have landed in
        the pending range: the chunk was cut as a new chunk is cut
        (`chunk_contacts`, and what fits the server's max_payload); write the
        shorter range down."""
        if chunk.upper is not None and chunk.upper != sync.pending_upper:
            sequence = sync.pending_sequence
            assert sequence is not None
            await progress.narrow_pending(
                session, sync.id, sequence, chunk.upper, chunk.count, self._clock()
            )

    async def _publish(self, sync_id: uuid.UUID, sequence: int, chunk: chunks.BuiltChunk) -> Step:
        js = self._bus.js
        if js is None:
            return Step.WAITING
        headers = {MSG_ID_HEADER: chunks.message_id(sync_id, sequence)}
        await js.publish(
            topology.SYNC_CHUNKS_SUBJECT, chunk.payload, timeout=ACK_TIMEOUT_S, headers=headers
        )
        async with self._db.transaction() as session:
            await progress.mark_published(session, sync_id, sequence, chunk.count, self._clock())
        return Step.WORKED

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()
