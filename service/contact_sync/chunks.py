"""The contacts of a chunk, read by keyset (contact id order), and the chunk
message: each person as the ordered contact work carries them (the profile
the outbox sends as ContactUpserted, the consent state it sends with every
consent change), built by the same code."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from marketing.bus.v1 import bus_pb2
from sqlalchemy import Row, select, text
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
    # Writers of a person's changes lock the contact row first: holding a
    # share lock, the chunk has every change committed before, and one not
    # yet committed takes its outbox sequence only after (see
    # outbox_watermark).
    query = query.with_for_update(read=True)
    if after is not None:
        query = query.where(Contact.id > after)
    if upto is not None:
        query = query.where(Contact.id <= upto)
    return list((await session.execute(query)).all())


_LAST_OUTBOX_SEQUENCE = text(
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('marketing_outbox', 'seq')), 0)"
)


async def outbox_watermark(session: AsyncSession) -> int:
    """The newest outbox sequence handed out so far. Read after the chunk's
    contacts (in the same transaction, their share locks held), every change
    to them up to it is in the chunk and every later one takes a larger
    sequence: the chunk's `outbox_sequence`."""
    return int(await session.scalar(_LAST_OUTBOX_SEQUENCE) or 0)


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
    sync_id: uuid.UUID,
    sequence: int,
    contacts: Sequence[bus_pb2.SyncedContact],
    outbox_sequence: int,
) -> bytes:
    return bus_pb2.ContactSyncChunk(
        sync_id=str(sync_id),
        sequence=sequence,
        contacts=contacts,
        outbox_sequence=outbox_sequence,
    ).SerializeToString()


def message_id(sync_id: uuid.UUID, sequence: int) -> str:
    """Nats-Msg-Id of a chunk: the same chunk published again (a resumed
    driver) is dropped by JetStream as a duplicate."""
    return f"{sync_id}:{sequence}"
