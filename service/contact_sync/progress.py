"""A sync's way forward, written by the driver (checkpoint) and the results
consumer (chunk results), and its end. Each step is one guarded statement,
so a driver resumed after a crash, a second driver, or a result delivered
twice can neither skip nor count anything twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from marketing.bus.v1 import bus_pb2
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Called after a chunk result was recorded (the driver's wake-up: it may
# publish again, or end the sync).
_listeners: list[Callable[[], None]] = []


def on_result(listener: Callable[[], None]) -> None:
    _listeners.append(listener)


def remove_on_result(listener: Callable[[], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def notify_result() -> None:
    for listener in list(_listeners):
        listener()


_PENDING = text(
    "UPDATE marketing_contact_sync SET pending_sequence = :sequence, pending_upper = :upper, "
    "updated_at = :now WHERE id = :id AND state = 'RUNNING' AND pending_sequence IS NULL "
    "AND published_chunks = :sequence - 1"
)
_PUBLISHED = text(
    "UPDATE marketing_contact_sync SET checkpoint = pending_upper, published_chunks = :sequence, "
    "published_contacts = published_contacts + :contacts, pending_sequence = NULL, "
    "pending_upper = NULL, updated_at = :now WHERE id = :id AND pending_sequence = :sequence"
)
# Written with the pending mark, before the chunk goes out: a result reported
# before the checkpoint moves (a chunk given up at once) finds its count.
_CHUNK_PENDING = text(
    "INSERT INTO marketing_contact_sync_chunk (sync_id, sequence, contacts) "
    "VALUES (:id, :sequence, :contacts) ON CONFLICT (sync_id, sequence) DO UPDATE "
    "SET contacts = EXCLUDED.contacts"
)
# A driver rebuilding a pending chunk after a crash cut it shorter (new
# contacts in its range would not fit the server's max_payload).
_NARROW_PENDING = text(
    "UPDATE marketing_contact_sync SET pending_upper = :upper, updated_at = :now "
    "WHERE id = :id AND state = 'RUNNING' AND pending_sequence = :sequence"
)
_CHUNK_PUBLISHED = text(
    "INSERT INTO marketing_contact_sync_chunk (sync_id, sequence, contacts, published_at) "
    "VALUES (:id, :sequence, :contacts, :now) ON CONFLICT (sync_id, sequence) DO UPDATE "
    "SET contacts = EXCLUDED.contacts, published_at = EXCLUDED.published_at"
)
_REACHED_END = text(
    "UPDATE marketing_contact_sync SET reached_end = true, updated_at = :now "
    "WHERE id = :id AND state = 'RUNNING' AND pending_sequence IS NULL"
)
# A sync ends when nothing is in flight and nothing more will be sent: it
# reached the last contact, or was cancelled. Chunks given up on fail it.
_SETTLE = text(
    "UPDATE marketing_contact_sync SET state = CAST(CASE WHEN given_up_chunks > 0 THEN 'FAILED' "
    "WHEN cancel_requested_at IS NOT NULL AND NOT reached_end THEN 'CANCELLED' "
    "ELSE 'SUCCEEDED' END AS contact_sync_state), ended_at = :now, updated_at = :now "
    "WHERE id = :id AND state = 'RUNNING' AND pending_sequence IS NULL "
    "AND reported_chunks >= published_chunks "
    "AND (reached_end OR cancel_requested_at IS NOT NULL)"
)
# Chunks published before :cutoff and still unreported are given up: claimed
# as a result would claim them (a late result then finds them claimed), all
# their people failed, and counted in the sync.
_GIVE_UP_OVERDUE = text(
    "WITH overdue AS (UPDATE marketing_contact_sync_chunk SET imported = 0, "
    "failed = COALESCE(contacts, 0), error = :reason, reported_at = :now "
    "WHERE sync_id = :id AND reported_at IS NULL AND published_at < :cutoff "
    "RETURNING sequence, failed) "
    "UPDATE marketing_contact_sync SET reported_chunks = reported_chunks + o.chunks, "
    "given_up_chunks = given_up_chunks + o.chunks, "
    "failed_contacts = failed_contacts + o.failed, "
    "error = COALESCE(error, 'chunk ' || o.first || ' given up: ' || CAST(:reason AS text)), "
    "updated_at = :now FROM (SELECT count(*) AS chunks, COALESCE(sum(failed), 0) AS failed, "
    "min(sequence) AS first FROM overdue) o WHERE id = :id AND o.chunks > 0 "
    "RETURNING o.chunks"
)
# The first delivery of a chunk's result claims it; a repeat finds it claimed.
_CLAIM_RESULT = text(
    "INSERT INTO marketing_contact_sync_chunk "
    "(sync_id, sequence, imported, failed, error, reported_at) "
    "SELECT s.id, :sequence, :imported, :failed, :error, :now FROM marketing_contact_sync s "
    "WHERE s.id = :id ON CONFLICT (sync_id, sequence) DO UPDATE SET imported = EXCLUDED.imported, "
    "failed = EXCLUDED.failed, error = EXCLUDED.error, reported_at = EXCLUDED.reported_at "
    "WHERE marketing_contact_sync_chunk.reported_at IS NULL "
    "RETURNING marketing_contact_sync_chunk.contacts"
)
_COUNT_RESULT = text(
    "UPDATE marketing_contact_sync SET reported_chunks = reported_chunks + 1, "
    "imported_contacts = imported_contacts + :imported, "
    "failed_contacts = failed_contacts + :failed, "
    "given_up_chunks = given_up_chunks + :given_up, error = COALESCE(error, :error), "
    "provider_jobs = provider_jobs + :jobs, "
    "last_provider_job = COALESCE(:last_job, last_provider_job), updated_at = :now "
    "WHERE id = :id"
)
# Only people we hold: an error row is personal data and goes with its contact.
_ERRORS = text(
    "INSERT INTO marketing_contact_sync_error "
    "(sync_id, contact_id, sequence, email, reason, created_at) "
    "SELECT :id, c.id, :sequence, c.email, :reason, :now FROM marketing_contact c "
    "WHERE c.email = lower(:email)"
)


async def mark_pending(
    session: AsyncSession,
    sync_id: uuid.UUID,
    sequence: int,
    upper: uuid.UUID,
    contacts: int,
    now: datetime,
) -> bool:
    """Say which contacts chunk `sequence` carries (up to `upper`, `contacts`
    of them), before it goes out; False when another driver got there first
    (or the sync ended)."""
    params = {"id": sync_id, "sequence": sequence, "upper": upper, "now": now}
    if not _changed(await session.execute(_PENDING, params)):
        return False
    await session.execute(_CHUNK_PENDING, {**params, "contacts": contacts})
    return True


async def narrow_pending(
    session: AsyncSession,
    sync_id: uuid.UUID,
    sequence: int,
    upper: uuid.UUID,
    contacts: int,
    now: datetime,
) -> bool:
    """The pending chunk `sequence`, rebuilt, carries fewer contacts: up to
    `upper`. Its Msg-Id stays, so publishing it again is still harmless."""
    params = {"id": sync_id, "sequence": sequence, "upper": upper, "now": now}
    if not _changed(await session.execute(_NARROW_PENDING, params)):
        return False
    await session.execute(_CHUNK_PENDING, {**params, "contacts": contacts})
    return True


async def mark_published(
    session: AsyncSession, sync_id: uuid.UUID, sequence: int, contacts: int, now: datetime
) -> bool:
    """The chunk is on the bus: move the checkpoint past it."""
    params = {"id": sync_id, "sequence": sequence, "contacts": contacts, "now": now}
    if not _changed(await session.execute(_PUBLISHED, params)):
        return False
    await session.execute(_CHUNK_PUBLISHED, params)
    return True


async def mark_reached_end(session: AsyncSession, sync_id: uuid.UUID, now: datetime) -> None:
    await session.execute(_REACHED_END, {"id": sync_id, "now": now})


async def settle(session: AsyncSession, sync_id: uuid.UUID, now: datetime) -> bool:
    """End the sync if nothing is in flight and nothing more will be sent."""
    return _changed(await session.execute(_SETTLE, {"id": sync_id, "now": now}))


async def record_result(
    session: AsyncSession, result: bus_pb2.ContactSyncChunkResult, now: datetime
) -> bool:
    """Count a chunk's result once; False for a repeat, or a result of a sync
    we do not have (say, of another deployment sharing the bus)."""
    try:
        sync_id = uuid.UUID(result.sync_id)
    except ValueError:
        return False
    key = {"id": sync_id, "sequence": result.sequence, "now": now}
    failed = len(result.failures)
    claim = {**key, "imported": result.imported, "failed": failed, "error": result.error or None}
    claimed = (await session.execute(_CLAIM_RESULT, claim)).first()
    if claimed is None:
        return False
    contacts = claimed[0]
    if result.error and contacts is not None:
        # A chunk given up on: everyone in it the provider did not import failed.
        failed = max(failed, contacts - result.imported)
    jobs = list(result.job_ids)
    count = {
        **key,
        "imported": result.imported,
        "failed": failed,
        "given_up": 1 if result.error else 0,
        "error": f"chunk {result.sequence} given up: {result.error}" if result.error else None,
        "jobs": len(jobs),
        "last_job": jobs[-1] if jobs else None,
    }
    await session.execute(_COUNT_RESULT, count)
    if result.failures:
        rows = [{**key, "email": f.email, "reason": f.reason} for f in result.failures]
        await session.execute(_ERRORS, rows)
    await settle(session, sync_id, now)
    return True


async def give_up_overdue(
    session: AsyncSession, sync_id: uuid.UUID, deadline: timedelta, now: datetime
) -> int:
    """Give up the chunks with no result `deadline` after they were published
    (a result lost, or a dispatcher that never reports): the sync then ends,
    FAILED, instead of staying RUNNING for good. Returns how many."""
    reason = f"no result within {deadline.total_seconds():.0f} s of publishing"
    params = {"id": sync_id, "cutoff": now - deadline, "reason": reason, "now": now}
    given_up = (await session.execute(_GIVE_UP_OVERDUE, params)).scalar()
    if not given_up:
        return 0
    await settle(session, sync_id, now)
    return int(given_up)


def _changed(result: object) -> bool:
    return bool(getattr(result, "rowcount", 0))
