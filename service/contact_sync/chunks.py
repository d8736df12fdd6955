"""The contacts of a chunk, read by keyset (contact id order), and the chunk
message: each person as the ordered contact work carries them (the profile
the outbox sends as ContactUpserted, the consent state it sends with every
consent change), built by the same code."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from marketing.bus.v1 import bus_pb2
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.consent.rules import consent_state
from service.contacts.rules import contact_payload, contact_views
from service.storage.models import Contact

# Per contact in a chunk, beside its own bytes: the field tag and its length.
_FIELD_OVERHEAD = 6
# The chunk's own fields (sync id, sequence) and the message headers.
CHUNK_OVERHEAD = 256


async def read_contacts(
    session: AsyncSession, *, after: uuid.UUID | None, upto: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """Up to `limit` contacts with ids in (after, upto], in id order, as plain
    rows of their columns (erased people are gone from the table, so they are
    never sent)."""
    query = select(*Contact.__table__.columns).order_by(Contact.id).limit(limit)
    if after is not None:
        query = query.where(Contact.id > after)
    if upto is not None:
        query = query.where(Contact.id <= upto)
    return list((await session.execute(query)).all())


async def synced_contacts(
    session: AsyncSession, rows: Sequence[Row[Any]]
) -> list[bus_pb2.SyncedContact]:
    """Each contact's profile and whole consent state (two queries in all)."""
    return [
        bus_pb2.SyncedContact(profile=contact_payload(view), consent=consent_state(view))
        for view in await contact_views(session, rows)
    ]


def fitting(contacts: Sequence[bus_pb2.SyncedContact], budget: int) -> int:
    """How many of `contacts`, from the first, fit in a chunk of `budget`
    bytes; at least one (any one contact fits the bus: profiles are limited
    far below its max_payload)."""
    size = CHUNK_OVERHEAD
    for count, contact in enumerate(contacts):
        size += contact.ByteSize() + _FIELD_OVERHEAD
        if size > budget:
            return max(count, 1)
    return len(contacts)


def chunk_message(
    sync_id: uuid.UUID, sequence: int, contacts: Sequence[bus_pb2.SyncedContact]
) -> bytes:
    return bus_pb2.ContactSyncChunk(
        sync_id=str(sync_id), sequence=sequence, contacts=contacts
    ).SerializeToString()


def message_id(sync_id: uuid.UUID, sequence: int) -> str:
    """Nats-Msg-Id of a chunk: the same chunk published again (a resumed
    driver) is dropped by JetStream as a duplicate."""
    return f"{sync_id}:{sequence}"
