"""Applying the dispatcher's delivery results to PostgreSQL."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from marketing.bus.v1 import bus_pb2
from marketing_runtime import event_bodies, kinds
from marketing_runtime.timestamps import to_timestamp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from service.deliveries import outbox
from service.segments import lists

log = logging.getLogger(__name__)
FAILED = bus_pb2.OUTCOME_FAILED

_EVENTS_COMPLETED = text(
    "UPDATE marketing_event_log SET status = 'COMPLETED', processed_at = :now, updated_at = :now, "
    "error = NULL WHERE id = ANY(:ids) RETURNING id"
)
_EVENTS_FAILED = text(
    "UPDATE marketing_event_log SET status = 'FAILED', updated_at = :now, error = :error, "
    "retry_count = :attempts WHERE id = :id AND status IN ('PENDING', 'PROCESSING') "
    "RETURNING id, contact_key, type, data, occurred_at"
)
# A failed event joins the outbox as FAILED: the outbox is the one place
# where failed work waits for review and re-drive.
_FAILED_EVENT_TO_OUTBOX = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status, created_at, "
    "completed_at, error, attempts, retry_count) "
    "VALUES (gen_random_uuid(), :key, :kind, :payload, 'FAILED', :now, :now, "
    ":error, :attempts, 0)"
)
# Settled already: a row still open (its writer committed it between the
# update above and this read, each with its own snapshot) is reported missing,
# so the result is tried again and marks it FAILED; counted as found, the
# result was acknowledged and the row stayed PENDING for good.
_EVENT_EXISTS = text(
    "SELECT 1 FROM marketing_event_log WHERE id = :id AND status NOT IN ('PENDING', 'PROCESSING')"
)
# An accepted erasure request needs the email no longer: it is forgotten here.
# The payload comes back only where a delivered row's contact is marked synced
# (a kind naming a contact id) or for a list change (its segment and link), not
# every payload.
_OUTBOX_DONE = text(
    "UPDATE marketing_outbox SET status = CAST(:status AS outbox_status), completed_at = :now, "
    "error = :error, attempts = :attempts, payload = CASE "
    "WHEN kind = :erased AND :status = 'COMPLETED' THEN :scrubbed "
    "ELSE payload END WHERE id = CAST(:id AS uuid) "
    "RETURNING kind, CASE WHEN kind = ANY(:with_contact_id) AND :status = 'COMPLETED' "
    "THEN payload WHEN kind = :list_change THEN payload END AS payload"
)
_ERASED = kinds.name(bus_pb2.KIND_CONTACT_ERASED)

_CONTACT_SYNCED = text(
    "UPDATE marketing_contact SET last_sync_at = :now, "
    "external_id = COALESCE(NULLIF(:provider_id, ''), external_id) "
    "WHERE id = CAST(:contact_id AS uuid)"
)
# The provider's id is unique among our contacts. When the provider gives one that another
# contact holds (a new account or provider reusing ids: ActiveCampaign counts from 1), the
# provider's answer is the current truth: the other contact lets it go (it gets its id
# again with its next delivery) rather than the result failing on the unique index for ever.
_PROVIDER_ID_RELEASED = text(
    "UPDATE marketing_contact SET external_id = NULL "
    "WHERE external_id = :provider_id AND id <> CAST(:contact_id AS uuid) RETURNING id"
)


async def record_events(
    session: AsyncSession, results: list[bus_pb2.DeliveryResult], now: datetime
) -> set[str]:
    """Returns the ids whose event-log row does not exist (yet)."""
    delivered = [r.delivery_id for r in results if r.outcome != FAILED]
    found: set[str] = set()
    if delivered:
        rows = await session.execute(_EVENTS_COMPLETED, {"now": now, "ids": delivered})
        found |= {row.id for row in rows}
    for r in results:
        if r.outcome == FAILED:
            found |= await _record_failed_event(session, r, now)
    return {r.delivery_id for r in results} - found


async def _record_failed_event(
    session: AsyncSession, r: bus_pb2.DeliveryResult, now: datetime
) -> set[str]:
    params = {"now": now, "error": r.error, "attempts": r.attempts, "id": r.delivery_id}
    row = (await session.execute(_EVENTS_FAILED, params)).first()
    if row is None:  # no such row (yet), or settled already (a late duplicate result)
        exists = await session.scalar(_EVENT_EXISTS, {"id": r.delivery_id})
        return {r.delivery_id} if exists else set()
    event = bus_pb2.EventTracked(
        event_id=row.id,
        email=row.data["email"],
        metric=row.type,
        occur_time=to_timestamp(row.occurred_at),
    )
    field, body = event_bodies.from_json(row.type, row.data["payload"])
    getattr(event, field).CopyFrom(body)
    await session.execute(
        _FAILED_EVENT_TO_OUTBOX,
        {
            "key": row.contact_key,
            "kind": outbox.EVENT_TRACKED,
            "payload": event.SerializeToString(),
            "now": now,
            "error": r.error,
            "attempts": r.attempts,
        },
    )
    return {row.id}


async def record_outbox(
    session: AsyncSession, results: list[bus_pb2.DeliveryResult], now: datetime
) -> None:
    list_results: list[lists.ListResult] = []
    for r in results:
        status = "FAILED" if r.outcome == FAILED else "COMPLETED"
        params = {
            "status": status,
            "now": now,
            "error": r.error or None,
            "attempts": r.attempts,
            "id": r.delivery_id,
            "erased": _ERASED,
            "scrubbed": outbox.ERASED_PAYLOAD,
            "with_contact_id": list(outbox.WITH_CONTACT_ID),
            "list_change": lists.KIND_NAME,
        }
        row = (await session.execute(_OUTBOX_DONE, params)).first()
        if row is not None and row.kind == lists.KIND_NAME:
            list_results.append(_list_result(r, row.payload))
            continue
        if row is None or row.payload is None:
            continue
        contact_id = outbox.contact_id(row.kind, row.payload)
        if contact_id:
            await _contact_synced(session, contact_id, r.provider_id, now)
    await lists.record_results(session, list_results, now)


def _list_result(r: bus_pb2.DeliveryResult, payload: bytes) -> lists.ListResult:
    return lists.ListResult(
        outbox_id=uuid.UUID(r.delivery_id),
        data=payload,
        accepted=r.outcome == bus_pb2.OUTCOME_DELIVERED,
        failed=r.outcome == FAILED,
        found_list_id=r.provider_id,
    )


async def _contact_synced(
    session: AsyncSession, contact_id: str, provider_id: str, now: datetime
) -> None:
    params = {"provider_id": provider_id, "contact_id": contact_id}
    if provider_id:
        released = (await session.execute(_PROVIDER_ID_RELEASED, params)).scalars().all()
        if released:
            log.warning(
                "provider id %s moved to contact %s from %s (another provider account?)",
                provider_id,
                contact_id,
                ", ".join(map(str, released)),
            )
    await session.execute(_CONTACT_SYNCED, {**params, "now": now})
