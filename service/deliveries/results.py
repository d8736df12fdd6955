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
from service.storage.fresh_plans import execute_afresh

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
    "UPDATE marketing_outbox o SET status = CAST(r.status AS outbox_status), "
    "completed_at = :now, error = r.error, attempts = r.attempts, payload = CASE "
    "WHEN o.kind = :erased AND r.status = 'COMPLETED' THEN :scrubbed ELSE o.payload END "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:errors AS text[]), "
    "CAST(:attempts AS integer[])) AS r(id, status, error, attempts) WHERE o.id = r.id "
    "RETURNING o.id, o.kind, CASE WHEN o.kind = ANY(:with_contact_id) AND r.status = 'COMPLETED' "
    "THEN o.payload WHEN o.kind = :list_change THEN o.payload END AS payload"
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
    """Every result's outbox row settled in one statement (a waitlist's
    thousands of enrolments report at once); then the contacts the delivered
    rows name are marked synced, and list changes recorded, in the results'
    order."""
    latest = _latest_per_row(results)
    if not latest:
        return
    # Bound in id order; PostgreSQL still locks rows in its own join's order,
    # so two recorders' overlapping batches may deadlock: one is then refused,
    # and its results are asked for again.
    ids = sorted(latest)
    params = {
        "now": now,
        "ids": ids,
        "statuses": ["FAILED" if latest[i].outcome == FAILED else "COMPLETED" for i in ids],
        "errors": [latest[i].error or None for i in ids],
        "attempts": [latest[i].attempts for i in ids],
        "erased": _ERASED,
        "scrubbed": outbox.ERASED_PAYLOAD,
        "with_contact_id": list(outbox.WITH_CONTACT_ID),
        "list_change": lists.KIND_NAME,
    }
    settled = {row.id: row for row in await execute_afresh(session, _OUTBOX_DONE, params)}
    list_results: list[lists.ListResult] = []
    for row_id, r in latest.items():
        row = settled.get(row_id)
        if row is None or row.payload is None:
            continue
        if row.kind == lists.KIND_NAME:
            list_results.append(_list_result(r, row.payload))
        elif contact_id := outbox.contact_id(row.kind, row.payload):
            await _contact_synced(session, contact_id, r.provider_id, now)
    await lists.record_results(session, list_results, now)


def _latest_per_row(
    results: list[bus_pb2.DeliveryResult],
) -> dict[uuid.UUID, bus_pb2.DeliveryResult]:
    """Each outbox row's last result in the batch, in the order the rows were
    first reported, except that SUPERSEDED never replaces an earlier result: a
    change delivered, then redelivered after a failover and found applied by
    its fence, keeps its delivery (the provider id, the list found). A
    delivery id that is no outbox row's (not a UUID) is no row to settle."""
    latest: dict[uuid.UUID, bus_pb2.DeliveryResult] = {}
    for r in results:
        try:
            row_id = uuid.UUID(r.delivery_id)
        except ValueError:
            log.warning("result recorder: delivery id %r names no outbox row", r.delivery_id)
            continue
        if r.outcome == bus_pb2.OUTCOME_SUPERSEDED and row_id in latest:
            continue
        latest[row_id] = r
    return latest


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
