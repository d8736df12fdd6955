"""The contacts of a chunk, read by keyset (contact id order), and the chunk
message: each person as the ordered contact work carries them (the profile
the outbox sends as ContactUpserted, the consent state it sends with every
consent change), built by the same code."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marketing.bus.v1 import bus_pb2
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.consent.snapshots import fill_consent_snapshot
from service.contacts.rules import fill_contact_payload, select_contacts_with_facts
from service.storage.models import Contact

# Per contact in a chunk, beside its own bytes: the field tag and its length.
_FIELD_OVERHEAD = 6
# The chunk's own fields (sync id, sequence) and the message headers.
CHUNK_OVERHEAD = 256


async def read_contacts(
    session: AsyncSession, *, after: uuid.UUID | None, upto: uuid.UUID | None, limit: int
) -> list[Row[Any]]:
    """Up to `limit` contacts with ids in (after, upto], in id order, as plain
    rows of their columns and their facts (`select_contacts_with_facts`;
    erased people are gone from the table, so they are never sent)."""
    query = select_contacts_with_facts().order_by(Contact.id).limit(limit)
    # Writers of a person's changes lock the contact row first: holding a
    # share lock, the chunk has every change committed before, and one not
    # yet committed takes its outbox sequence only after (see
    # outbox_watermark).
    query = query.with_for_update(read=True, of=Contact)
    if after is not None:
        query = query.where(Contact.id > after)
    if upto is not None:
        query = query.where(Contact.id <= upto)
    # On the session's connection: plain rows, without the ORM's per-row
    # loading (a sync reads a million).
    connection = await session.connection()
    return list((await connection.execute(query)).all())


_LAST_OUTBOX_SEQUENCE = text(
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('marketing_outbox', 'seq')), 0)"
)


async def outbox_watermark(session: AsyncSession) -> int:
    """The newest outbox sequence handed out so far. Read after the chunk's
    contacts (in the same transaction, their share locks held), every change
    to them up to it is in the chunk and every later one takes a larger
    sequence: the chunk's `outbox_sequence`."""
    return int(await session.scalar(_LAST_OUTBOX_SEQUENCE) or 0)


@dataclass(frozen=True)
class BuiltChunk:
    payload: bytes  # the ContactSyncChunk, serialized
    count: int  # the rows it carries, from the first
    # The id of the last of them (the chunk covers (after, upper]); None for no
    # rows (a pending chunk whose people were all erased since).
    upper: uuid.UUID | None


async def build_chunk(
    session: AsyncSession,
    sync_id: uuid.UUID,
    sequence: int,
    rows: Sequence[Row[Any]],
    *,
    budget: int | None,
) -> BuiltChunk:
    """The chunk of `rows`, as `read_contacts` read them in this session
    (their share locks held; see `outbox_watermark`): each person's profile
    and whole consent state, written straight into the chunk's message (no
    copies of a thousand messages). With `budget`, only the rows that fit in that many
    bytes, from the first (at least one: profiles are limited far below the
    bus's max_payload)."""
    message = bus_pb2.ContactSyncChunk(
        sync_id=str(sync_id),
        sequence=sequence,
        outbox_sequence=await outbox_watermark(session),
    )
    contacts = message.contacts
    size = CHUNK_OVERHEAD
    for row in rows:
        synced = contacts.add()
        fill_contact_payload(synced.profile, row)
        fill_consent_snapshot(
            synced.consent,
            row,
            suppressed=row.suppressed,
            newsletter_member=row.newsletter_member,
        )
        size += synced.ByteSize() + _FIELD_OVERHEAD
        if budget is not None and size > budget and len(contacts) > 1:
            del contacts[-1]
            break
    count = len(contacts)
    upper = rows[count - 1].id if count else None
    return BuiltChunk(message.SerializeToString(), count, upper)


def message_id(sync_id: uuid.UUID, sequence: int) -> str:
    """Nats-Msg-Id of a chunk: the same chunk published again (a resumed
    driver) is dropped by JetStream as a duplicate."""
    return f"{sync_id}:{sequence}"
