"""The contacts of a chunk, read by keyset (contact id order), and the chunk
message: each person as the ordered contact work carries them (the profile
the outbox sends as ContactUpserted, the consent state it sends with every
consent change), built by the same code. A consent page (`build_consent_page`)
carries only the consent states, for the dispatcher's consent stage."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marketing.bus.v1 import bus_pb2
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.consent.rules import fill_consent_snapshot
from service.contacts.rules import (
    fill_contact_payload,
    select_consent_with_facts,
    select_contacts_with_facts,
)
from service.storage.models import Contact

# Per contact in a chunk, beside its own bytes: the field tag and its length.
_FIELD_OVERHEAD = 6
# The chunk's own fields (sync id, sequence) and the message headers.
CHUNK_OVERHEAD = 256
# What follows `<sync_id>:<sequence>` in a consent page's Msg-Id (the
# dispatcher's consent stage reads a page it cannot parse by it).
CONSENT_SUFFIX = ":consent"


async def read_contacts(
    session: AsyncSession,
    *,
    after: uuid.UUID | None,
    upto: uuid.UUID | None,
    limit: int,
    consent_only: bool = False,
) -> list[Row[Any]]:
    """Up to `limit` contacts with ids in (after, upto], in id order, as plain
    rows of their columns and their facts (`select_contacts_with_facts`;
    erased people are gone from the table, so they are never sent). With
    `consent_only`, only what their consent states need."""
    select_rows = select_consent_with_facts if consent_only else select_contacts_with_facts
    query = select_rows().order_by(Contact.id).limit(limit)
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
    with_consent: bool,
) -> BuiltChunk:
    """The chunk of `rows`, as `read_contacts` read them in this session
    (their share locks held; see `outbox_watermark`): each person's profile,
    and `with_consent` their whole consent state (for a sync without consent
    pages, whose import stage hands the consent on), written straight into the
    chunk's message (no copies of a thousand messages). With `budget`, only
    the rows that fit in that many bytes, from the first (at least one:
    profiles are limited far below the bus's max_payload)."""
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
        if with_consent:
            _fill_consent(synced.consent, row)
        size += synced.ByteSize() + _FIELD_OVERHEAD
        if _over(budget, size, len(contacts)):
            del contacts[-1]
            break
    return _built(message, len(contacts), rows)


async def build_consent_page(
    session: AsyncSession,
    sync_id: uuid.UUID,
    sequence: int,
    rows: Sequence[Row[Any]],
    *,
    budget: int | None,
) -> BuiltChunk:
    """The consent page of `rows` (read with `consent_only`, share locks held):
    the consent stage's message, each person's whole consent state without
    contact id or records. Its `imported` names the page (no one counted: the
    people are counted by their import chunks). `budget` as for a chunk."""
    message = bus_pb2.ContactSyncConsent(
        imported=bus_pb2.ContactSyncChunkResult(sync_id=str(sync_id), sequence=sequence),
        outbox_sequence=await outbox_watermark(session),
    )
    people = message.people
    size = CHUNK_OVERHEAD
    for row in rows:
        state = people.add()
        _fill_consent(state, row)
        state.ClearField("contact_id")  # the calls need none: half the bytes
        size += state.ByteSize() + _FIELD_OVERHEAD
        if _over(budget, size, len(people)):
            del people[-1]
            break
    return _built(message, len(people), rows)


def _fill_consent(state: bus_pb2.ConsentState, row: Row[Any]) -> None:
    fill_consent_snapshot(
        state, row, suppressed=row.suppressed, newsletter_member=row.newsletter_member
    )


def _over(budget: int | None, size: int, count: int) -> bool:
    """Past the byte budget with more than one entry: the last one goes."""
    return budget is not None and size > budget and count > 1


def _built(
    message: bus_pb2.ContactSyncChunk | bus_pb2.ContactSyncConsent,
    count: int,
    rows: Sequence[Row[Any]],
) -> BuiltChunk:
    upper = rows[count - 1].id if count else None
    return BuiltChunk(message.SerializeToString(), count, upper)


def message_id(sync_id: uuid.UUID, sequence: int, *, consent: bool = False) -> str:
    """Nats-Msg-Id of a chunk (`<sync_id>:<sequence>`) or of a consent page
    (`<sync_id>:<sequence>:consent`, as the dispatcher's import stage names the
    consent it hands on): the same one published again (a resumed driver) is
    dropped by JetStream as a duplicate."""
    return f"{sync_id}:{sequence}{CONSENT_SUFFIX if consent else ''}"
