"""Contact-sync RPCs: requests to rules calls, views to messages."""

from __future__ import annotations

from typing import Any

from marketing.v1 import contact_sync_pb2
from marketing.v1 import service_pb2 as pb
from marketing_runtime.clock import Clock

from service.common.conversions import timestamp
from service.common.pagination import PageTokens
from service.contact_sync import rules
from service.contact_sync.rules import SyncErrorView, SyncView
from service.storage.database import Database

_STATES: dict[rules.ContactSyncState, Any] = {
    state: contact_sync_pb2.ContactSync.State.Value(f"STATE_{state.value}")
    for state in rules.ContactSyncState
}


class ContactSyncHandlers:
    def __init__(self, db: Database, tokens: PageTokens, *, clock: Clock) -> None:
        self._db = db
        self._tokens = tokens
        self._clock = clock

    async def start(self, request: pb.StartContactSyncRequest) -> pb.StartContactSyncResponse:
        sync = await rules.start_sync(self._db, request_id=request.request_id, now=self._clock())
        return pb.StartContactSyncResponse(contact_sync=sync_message(sync))

    async def get(self, request: pb.GetContactSyncRequest) -> pb.GetContactSyncResponse:
        sync = await rules.get_sync(self._db, name=request.name)
        return pb.GetContactSyncResponse(contact_sync=sync_message(sync))

    async def list(self, request: pb.ListContactSyncsRequest) -> pb.ListContactSyncsResponse:
        page = await rules.list_syncs(
            self._db, self._tokens, page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListContactSyncsResponse(
            contact_syncs=[sync_message(sync) for sync in page.syncs],
            next_page_token=page.next_page_token,
        )

    async def cancel(self, request: pb.CancelContactSyncRequest) -> pb.CancelContactSyncResponse:
        sync = await rules.cancel_sync(self._db, name=request.name, now=self._clock())
        return pb.CancelContactSyncResponse(contact_sync=sync_message(sync))

    async def list_errors(
        self, request: pb.ListContactSyncErrorsRequest
    ) -> pb.ListContactSyncErrorsResponse:
        page = await rules.list_sync_errors(
            self._db,
            self._tokens,
            parent=request.parent,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListContactSyncErrorsResponse(
            errors=[error_message(error) for error in page.errors],
            next_page_token=page.next_page_token,
        )


def sync_message(sync: SyncView) -> contact_sync_pb2.ContactSync:
    return contact_sync_pb2.ContactSync(
        name=rules.sync_name(sync.id),
        state=_STATES[sync.state],
        total_contacts=sync.total_contacts,
        published_contacts=sync.published_contacts,
        imported_contacts=sync.imported_contacts,
        failed_contacts=sync.failed_contacts,
        published_chunks=sync.published_chunks,
        reported_chunks=sync.reported_chunks,
        provider_jobs=sync.provider_jobs,
        last_provider_job=sync.last_provider_job or "",
        error=sync.error or "",
        create_time=timestamp(sync.created_at),
        update_time=timestamp(sync.updated_at),
        end_time=timestamp(sync.ended_at),
        cancel_time=timestamp(sync.cancel_requested_at),
    )


def error_message(error: SyncErrorView) -> contact_sync_pb2.ContactSyncError:
    return contact_sync_pb2.ContactSyncError(
        email=error.email, reason=error.reason, create_time=timestamp(error.created_at)
    )
