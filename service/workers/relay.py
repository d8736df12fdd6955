"""The outbox relay: publishes committed outbox rows to JetStream in sequence
order, with Nats-Msg-Id = the row's id, then marks them published.

Only one relay publishes at a time (a PostgreSQL advisory lock elects it among
service replicas), so one person's changes reach the stream in the order they
were committed: all rows go out in one sequence, whatever subject each kind
has (`topology.work_subject`), so each subject keeps that order too. A crash
between publishing and marking re-publishes the same ids, which JetStream drops
as duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.message import DecodeError
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds, topology
from marketing_runtime.clock import Clock, utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER, message_id, too_large, wire_size
from marketing_runtime.timestamps import to_timestamp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.deliveries import outbox
from service.storage.database import Database
from service.storage.fresh_plans import execute_afresh

log = logging.getLogger(__name__)
RELAY_LOCK_KEY = 0x6D61726B  # "mark": the advisory lock that elects the relay
# Rows read, published and marked per round. Each round waits for its acks
# and its statements; while other workers of the process keep the event loop
# busy (a waitlist's batches of 2,000), every wait comes back late, so a round
# carries as many rows as those batches do.
BATCH_SIZE = 2000
IDLE_POLL_S = 0.2
RETRY_S = 1.0
ACK_TIMEOUT_S = 5.0
PRUNE_EVERY_S = 60.0
DEFAULT_RETENTION = timedelta(days=1)

# The relay's two statements run on plans made for each run
# (service.storage.fresh_plans): the outbox goes from empty to millions of rows.
_PENDING = text(
    "SELECT id, seq, kind, contact_key, payload, created_at, retry_count FROM marketing_outbox "
    "WHERE status = 'PENDING' ORDER BY seq LIMIT :limit"
)
# Events need nothing more from the outbox once on the bus: the event log
# tracks them from there. Everything else waits IN_FLIGHT for its result.
_MARK = text(
    "UPDATE marketing_outbox SET published_at = :now, status = CAST(CASE WHEN kind = :event "
    "THEN 'COMPLETED' ELSE 'IN_FLIGHT' END AS outbox_status), "
    "completed_at = CASE WHEN kind = :event THEN CAST(:now AS timestamptz) END "
    "WHERE id = ANY(:ids) AND status = 'PENDING'"
)


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        bus: Bus,
        *,
        clock: Clock = utc_now,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._retention = retention
        self._next_prune = 0.0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        outbox.on_commit(self._wake.set)

    async def run(self) -> None:
        """Relay until `stop()`; stand by while another replica holds the lock."""
        while not self._stopping.is_set():
            try:
                async with self._db.engine.connect() as conn:
                    if await conn.scalar(text(f"SELECT pg_try_advisory_lock({RELAY_LOCK_KEY})")):
                        log.info("outbox relay: elected")
                        await self._relay_holding_lock(conn)
                        continue
            except Exception as exc:
                log.warning("outbox relay interrupted: %s", exc)
            await self._pause(RETRY_S)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        outbox.remove_on_commit(self._wake.set)

    async def _relay_holding_lock(self, conn: AsyncConnection) -> None:
        """The lock is the connection's: on any error the connection is thrown
        away (not pooled) so the lock goes with it and a standby can take over."""
        try:
            await self._relay(conn)
        except BaseException:
            await conn.invalidate()
            raise
        await conn.execute(text(f"SELECT pg_advisory_unlock({RELAY_LOCK_KEY})"))

    async def _relay(self, conn: AsyncConnection) -> None:
        while not self._stopping.is_set():
            await self._prune_now_and_then()
            nc, js = self._bus.nc, self._bus.js
            rows = (await execute_afresh(conn, _PENDING, {"limit": BATCH_SIZE})).mappings().all()
            await conn.commit()
            if not rows or nc is None or js is None:
                await self._pause(IDLE_POLL_S if js else RETRY_S)
                continue
            messages, unpublishable = _sized(rows, self._clock(), nc.max_payload)
            if unpublishable:
                await self._fail(conn, unpublishable)
            published = await _publish(js, messages)
            if published:
                await execute_afresh(
                    conn,
                    _MARK,
                    {"now": self._clock(), "ids": published, "event": outbox.EVENT_TRACKED},
                )
                await conn.commit()
            if len(published) < len(messages):
                await self._pause(RETRY_S)

    async def _fail(self, conn: AsyncConnection, rows: list[outbox.Unpublishable]) -> None:
        """A row the server would refuse (closing the connection), or whose
        payload cannot be read, is not published, nor left to hold up the rows
        behind it: it waits FAILED."""
        await outbox.fail_unpublishable(conn, rows, now=self._clock())
        await conn.commit()
        log.warning(
            "outbox relay: %d rows the bus cannot carry are failed deliveries now: %s",
            len(rows),
            rows[0].error,
        )

    async def _prune_now_and_then(self) -> None:
        """Finished rows are kept for `retention` (for inspection), then deleted."""
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        async with self._db.transaction() as session:
            pruned = await outbox.prune_completed(session, before=self._clock() - self._retention)
        if pruned:
            log.info("outbox relay: pruned %d finished rows", pruned)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()


_Message = tuple[str, bytes, None, None, dict[str, str]]


def _sized(
    rows: Any, now: datetime, max_payload: int
) -> tuple[list[tuple[Any, _Message]], list[outbox.Unpublishable]]:
    """The rows' messages that fit the server's max_payload, and the rows
    whose messages do not or cannot be read."""
    fitting, unpublishable = [], []
    for row in rows:
        try:
            event_id, message = _message(row, now)
        except (ValueError, DecodeError) as exc:  # a row no release could publish
            error = f"unreadable outbox payload of kind {row['kind']!r}: {exc!r}"
            unpublishable.append(outbox.Unpublishable(row["id"], None, error))
            continue
        size = wire_size(message[1], message[4])
        if size <= max_payload:
            fitting.append((row, message))
        else:
            unpublishable.append(
                outbox.Unpublishable(row["id"], event_id, too_large(size, max_payload))
            )
    return fitting, unpublishable


async def _publish(js: Any, messages: list[tuple[Any, _Message]]) -> list[Any]:
    """Publish in order; return the ids JetStream acknowledged."""
    futures = []
    try:
        for _, message in messages:
            futures.append(await js.publish_async(*message))
        await asyncio.wait(futures, timeout=ACK_TIMEOUT_S)
    except Exception as exc:
        log.warning("outbox relay: publishing failed: %s", exc)
    acked = []
    for (row, _), future in zip(messages, futures, strict=False):
        if future.done() and not future.cancelled() and future.exception() is None:
            acked.append(row["id"])
        elif not future.done():
            future.cancel()
    return acked


def _is_event(row: Any) -> bool:
    return bool(row["kind"] == outbox.EVENT_TRACKED)


def _message(row: Any, now: datetime) -> tuple[str | None, _Message]:
    """The row's event id (None for other kinds) and its message: the row's
    payload is the kind's bus message already, parsed into the Delivery's
    field of that kind as it is."""
    if row["payload"] == outbox.ERASED_PAYLOAD:
        raise ValueError("the person was erased")
    is_event = _is_event(row)
    kind = kinds.from_name(row["kind"])
    message = bus_pb2.Delivery(
        type=kind,
        contact_key=row["contact_key"],
        sequence=0 if is_event else row["seq"],
        create_time=to_timestamp(row["created_at"]),
    )
    getattr(message, kinds.payload_field(kind)).ParseFromString(row["payload"])
    # Events keep their event id end to end, so the fast path and this
    # fallback path deduplicate each other on the bus.
    event_id = message.event_tracked.event_id if is_event else None
    message.id = base_id = event_id if event_id is not None else str(row["id"])
    subject = topology.work_subject(kind)
    headers = {MSG_ID_HEADER: message_id(base_id, str(row["id"]), row["retry_count"])}
    return event_id, (subject, message.SerializeToString(), None, None, headers)
