"""Recording delivery results on a real PostgreSQL: a delivered profile or
consent state marks its contact synced (and keeps the provider's id), while a
failed one, an event and a kind naming no contact leave contacts as they were;
only the payloads of the kinds naming a contact come back to be read."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from sqlalchemy import insert, text

from service.deliveries import outbox, results
from service.storage.database import Database
from service.storage.models import Contact
from tests.harness import own_database

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
_ROW = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status) "
    "VALUES (:id, 'k', :kind, :payload, 'IN_FLIGHT')"
)
_SYNCED = text("SELECT id, last_sync_at, external_id FROM marketing_contact")


def test_only_the_kinds_naming_a_contact_id_have_their_payloads_read_back() -> None:
    named = {
        kinds.name(kind)
        for kind in kinds.ALL
        if outbox.contact_id(kinds.name(kind), _payload(kind, "c")) == "c"
    }
    assert set(outbox.WITH_CONTACT_ID) == named
    assert outbox.EVENT_TRACKED not in named


def test_delivered_profiles_and_consent_mark_their_contacts_synced(database_url: str) -> None:
    profile, consent, failed, untouched = (uuid.uuid4() for _ in range(4))
    rows: list[tuple[uuid.UUID, bus_pb2.Kind, Any, int]] = [
        (profile, bus_pb2.KIND_CONTACT_UPSERTED, profile, bus_pb2.OUTCOME_DELIVERED),
        (consent, bus_pb2.KIND_CONSENT_CHANGED, consent, bus_pb2.OUTCOME_DELIVERED),
        (failed, bus_pb2.KIND_CONTACT_UPSERTED, failed, bus_pb2.OUTCOME_FAILED),
        (untouched, bus_pb2.KIND_CONTACT_ERASED, untouched, bus_pb2.OUTCOME_DELIVERED),
    ]
    row_ids = {contact: uuid.uuid4() for contact, *_ in rows}

    async def scenario(url: str) -> dict[uuid.UUID, tuple[Any, Any]]:
        db = Database(url)
        try:
            async with db.transaction() as session:
                for contact, kind, _, _ in rows:
                    await session.execute(
                        insert(Contact).values(id=contact, email=f"{contact}@b.co")
                    )
                    await session.execute(
                        _ROW,
                        {
                            "id": row_ids[contact],
                            "kind": kinds.name(kind),
                            "payload": _payload(kind, str(contact)),
                        },
                    )
            delivered = [
                bus_pb2.DeliveryResult(
                    delivery_id=str(row_ids[contact]),
                    type=kind,
                    outcome=outcome,  # type: ignore[arg-type]
                    provider_id=f"kl-{contact}",
                )
                for contact, kind, _, outcome in rows
            ]
            return await _recorded(db, delivered)
        finally:
            await db.engine.dispose()

    with own_database(database_url, "results") as url:
        synced = asyncio.run(scenario(url))

    assert synced == {
        profile: (NOW, f"kl-{profile}"),
        consent: (NOW, f"kl-{consent}"),
        failed: (None, None),
        untouched: (None, None),
    }


def test_a_provider_id_another_contact_holds_moves_to_the_one_just_delivered(
    database_url: str,
) -> None:
    """A provider that reuses ids (another account; ActiveCampaign counts from 1) gives
    a contact the id an older contact holds: the answer wins, the result is recorded."""
    older, newer = uuid.uuid4(), uuid.uuid4()
    row_id = uuid.uuid4()
    kind = bus_pb2.KIND_CONTACT_UPSERTED

    async def scenario(url: str) -> dict[uuid.UUID, tuple[Any, Any]]:
        db = Database(url)
        try:
            async with db.transaction() as session:
                await session.execute(
                    insert(Contact).values(id=older, email="old@b.co", external_id="7")
                )
                await session.execute(insert(Contact).values(id=newer, email="new@b.co"))
                await session.execute(
                    _ROW,
                    {"id": row_id, "kind": kinds.name(kind), "payload": _payload(kind, str(newer))},
                )
            result = bus_pb2.DeliveryResult(
                delivery_id=str(row_id),
                type=kind,
                outcome=bus_pb2.OUTCOME_DELIVERED,
                provider_id="7",
            )
            return await _recorded(db, [result])
        finally:
            await db.engine.dispose()

    with own_database(database_url, "results_moved_id") as url:
        synced = asyncio.run(scenario(url))

    assert synced == {older: (None, None), newer: (NOW, "7")}


async def _recorded(
    db: Database, delivered: list[bus_pb2.DeliveryResult]
) -> dict[uuid.UUID, tuple[Any, Any]]:
    """Record the results, then each contact's (last sync time, provider id)."""
    async with db.transaction() as session:
        await results.record_outbox(session, delivered, NOW)
    async with db.transaction() as session:
        return {r.id: (r.last_sync_at, r.external_id) for r in await session.execute(_SYNCED)}


def _payload(kind: bus_pb2.Kind, contact_id: str) -> bytes:
    """A payload of `kind` naming `contact_id` wherever the kind has a place for one."""
    message = kinds.parse_payload(kind, b"")
    holder = message.state if "state" in message.DESCRIPTOR.fields_by_name else message
    if "contact_id" in holder.DESCRIPTOR.fields_by_name:
        holder.contact_id = contact_id
    if "email" in holder.DESCRIPTOR.fields_by_name:
        holder.email = "a@b.co"
    return bytes(message.SerializeToString())


def test_a_redelivered_change_found_applied_keeps_its_delivery(database_url: str) -> None:
    """A change delivered, redelivered after a failover and found applied by its
    fence, reports DELIVERED then SUPERSEDED, often in one batch of results: the
    row is settled once, and the contact keeps the provider id the delivery
    gave. A delivery id that is no outbox row's is left out, not the batch."""
    contact, row_id = uuid.uuid4(), uuid.uuid4()
    kind = bus_pb2.KIND_CONTACT_UPSERTED

    async def scenario(url: str) -> dict[uuid.UUID, tuple[Any, Any]]:
        db = Database(url)
        try:
            async with db.transaction() as session:
                await session.execute(insert(Contact).values(id=contact, email="again@b.co"))
                payload = _payload(kind, str(contact))
                await session.execute(
                    _ROW, {"id": row_id, "kind": kinds.name(kind), "payload": payload}
                )
            results_ = [
                bus_pb2.DeliveryResult(
                    delivery_id=str(row_id),
                    type=kind,
                    outcome=bus_pb2.OUTCOME_DELIVERED,
                    provider_id="kl-again",
                ),
                bus_pb2.DeliveryResult(delivery_id="not-a-row", type=kind),
                bus_pb2.DeliveryResult(
                    delivery_id=str(row_id), type=kind, outcome=bus_pb2.OUTCOME_SUPERSEDED
                ),
            ]
            return await _recorded(db, results_)
        finally:
            await db.engine.dispose()

    with own_database(database_url, "results_again") as url:
        synced = asyncio.run(scenario(url))

    assert synced == {contact: (NOW, "kl-again")}
