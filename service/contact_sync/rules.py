"""Contact syncs as callers see them: start one (one at a time), read, list
newest first, cancel, and list the people the provider refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.errors import FailedPreconditionError, NotFoundError, Violations
from service.storage.database import Database, after_commit
from service.storage.models import Contact, ContactSync, ContactSyncError
from service.storage.models import ContactSyncState as ContactSyncState  # handlers name states

NAME_PREFIX = "contactSyncs/"
RESOURCE_TYPE = "contact sync"
# The transaction-scoped advisory lock that serialises starts ("sync").
_START_LOCK = text("SELECT pg_advisory_xact_lock(0x73796E63)")
SYNC_PAGES = Paging(scope="contactSyncs", key=(KeyKind.TIME, KeyKind.UUID))
_SYNC_ORDER = (ContactSync.created_at, ContactSync.id)
# Called after a sync was started or cancelled commits (the driver's wake-up).
_listeners: list[Callable[[], None]] = []


def on_change(listener: Callable[[], None]) -> None:
    _listeners.append(listener)


def remove_on_change(listener: Callable[[], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _notify() -> None:
    for listener in list(_listeners):
        listener()


@dataclass(frozen=True)
class SyncView:
    id: uuid.UUID
    state: ContactSyncState
    total_contacts: int
    published_contacts: int
    imported_contacts: int
    failed_contacts: int
    published_chunks: int
    reported_chunks: int
    provider_jobs: int
    last_provider_job: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    cancel_requested_at: datetime | None


_VIEW_COLUMNS = tuple(f.name for f in fields(SyncView))


def view(row: ContactSync) -> SyncView:
    return SyncView(**{column: getattr(row, column) for column in _VIEW_COLUMNS})


@dataclass(frozen=True)
class SyncPage:
    syncs: list[SyncView]
    next_page_token: str


@dataclass(frozen=True)
class SyncErrorView:
    email: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class SyncErrorPage:
    errors: list[SyncErrorView]
    next_page_token: str


def sync_name(sync_id: uuid.UUID) -> str:
    return f"{NAME_PREFIX}{sync_id}"


def parse_sync_name(v: Violations, field_path: str, name: str) -> uuid.UUID | None:
    if not name:
        v.add(field_path, "REQUIRED", "name the sync: contactSyncs/{uuid}")
        return None
    try:
        if not name.startswith(NAME_PREFIX):
            raise ValueError(name)
        return uuid.UUID(name.removeprefix(NAME_PREFIX))
    except ValueError:
        v.add(field_path, "INVALID_NAME", "must look like contactSyncs/{uuid}")
        return None


def _parse_request_id(v: Violations, request_id: str) -> uuid.UUID | None:
    if not request_id:
        return None
    try:
        return uuid.UUID(request_id)
    except ValueError:
        v.add("request_id", "INVALID_REQUEST_ID", "must be a UUID")
        return None


async def start_sync(db: Database, *, request_id: str, now: datetime) -> SyncView:
    """Start a sync of every contact there is now; FAILED_PRECONDITION naming
    the running one while one runs. A repeated request id returns its sync."""
    v = Violations()
    request = _parse_request_id(v, request_id)
    v.raise_if_any()
    async with db.transaction() as session:
        await session.execute(_START_LOCK)
        if request is not None:
            earlier = await session.scalar(
                select(ContactSync).where(ContactSync.request_id == request)
            )
            if earlier is not None:
                return view(earlier)
        running = await running_sync(session)
        if running is not None:
            raise FailedPreconditionError(
                reason="CONTACT_SYNC_RUNNING",
                subject=sync_name(running.id),
                description=f"{sync_name(running.id)} is running: one sync runs at a time",
            )
        total = await session.scalar(select(func.count()).select_from(Contact))
        row = ContactSync(
            id=uuid.uuid4(),
            request_id=request,
            state=ContactSyncState.RUNNING,
            total_contacts=int(total or 0),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        after_commit(session, _notify)
        return view(row)


async def running_sync(session: AsyncSession) -> ContactSync | None:
    return await session.scalar(
        select(ContactSync).where(ContactSync.state == ContactSyncState.RUNNING)
    )


async def _find(session: AsyncSession, name: str, field_path: str) -> ContactSync:
    v = Violations()
    sync_id = parse_sync_name(v, field_path, name)
    v.raise_if_any()
    row = await session.get(ContactSync, sync_id)
    if row is None:
        raise NotFoundError(resource_type=RESOURCE_TYPE, resource_name=name)
    return row


async def get_sync(db: Database, *, name: str) -> SyncView:
    async with db.transaction() as session:
        return view(await _find(session, name, "name"))


async def list_syncs(
    db: Database, tokens: PageTokens, *, page_size: int, page_token: str
) -> SyncPage:
    v = Violations()
    page = tokens.request(v, SYNC_PAGES, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    async with db.transaction() as session:
        rows, token = await read_page(
            session, tokens, SYNC_PAGES, page, select(ContactSync), _SYNC_ORDER, descending=True
        )
    return SyncPage([view(row) for row in rows], token)


async def cancel_sync(db: Database, *, name: str, now: datetime) -> SyncView:
    """Ask a running sync to stop sending; it ends CANCELLED once the chunks in
    flight are reported. Cancelling a cancelled one changes nothing; one that
    SUCCEEDED or FAILED cannot be cancelled."""
    async with db.transaction() as session:
        row = await _find(session, name, "name")
        await session.refresh(row, with_for_update=True)
        if row.state in (ContactSyncState.SUCCEEDED, ContactSyncState.FAILED):
            raise FailedPreconditionError(
                reason="CONTACT_SYNC_ENDED",
                subject=name,
                description=f"{name} has ended ({row.state.value}): nothing to cancel",
            )
        if row.state is ContactSyncState.RUNNING and row.cancel_requested_at is None:
            row.cancel_requested_at = row.updated_at = now
            after_commit(session, _notify)
        return view(row)


def _error_pages(parent: str) -> Paging:
    return Paging(scope=f"{parent}/errors", key=(KeyKind.ID,))


async def list_sync_errors(
    db: Database, tokens: PageTokens, *, parent: str, page_size: int, page_token: str
) -> SyncErrorPage:
    v = Violations()
    sync_id = parse_sync_name(v, "parent", parent)
    paging = _error_pages(parent)
    page = tokens.request(v, paging, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    async with db.transaction() as session:
        if await session.get(ContactSync, sync_id) is None:
            raise NotFoundError(resource_type=RESOURCE_TYPE, resource_name=parent)
        query = select(ContactSyncError).where(ContactSyncError.sync_id == sync_id)
        rows, token = await read_page(session, tokens, paging, page, query, (ContactSyncError.id,))
    return SyncErrorPage([SyncErrorView(r.email, r.reason, r.created_at) for r in rows], token)
