"""Who may receive a message on a channel from a segment now: the segment's
members with consent for that channel (consent is never assumed: the flag is
the newest record's) and not on the suppression list (an unsubscribe, a
complaint or a bounce suppresses the address for every channel); for SMS, the
number not on the SMS suppression list; for push, a device token on file.

Resolved in keyset pages of contact ids, read by two readers side by side
over two halves of the id range, so a 500,000-person audience is streamed
in flat memory; automation and campaigns take recipients from here
and nowhere else (Property 11)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, not_, select, text, true
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.sql import email_key_sql
from service.push import tokens as push_tokens
from service.sms import suppression as sms_suppression
from service.storage.database import Database
from service.storage.models import ConsentType, Contact, SegmentMembership, Suppression

DEFAULT_PAGE = 5000
DEFAULT_STREAMS = 2
_CHANNELS = {
    ConsentType.EMAIL: Contact.email_opt_in,
    ConsentType.SMS: Contact.sms_opt_in,
    ConsentType.PUSH: Contact.push_opt_in,
}


@dataclass(frozen=True, slots=True)
class Recipient:
    contact_id: uuid.UUID
    email: str
    phone: str | None


def channels() -> frozenset[ConsentType]:
    """The consent types that are messaging channels."""
    return frozenset(_CHANNELS)


async def audience_page(
    db: Database,
    segment_id: str,
    channel: ConsentType,
    *,
    after: uuid.UUID | None = None,
    limit: int = DEFAULT_PAGE,
) -> list[Recipient]:
    """Up to `limit` recipients with contact ids above `after`, in id order."""
    query = _page_query(segment_id, channel, after, limit)
    async with db.transaction() as session:
        found = await _fetch(session, query)
    return _recipients(found)


async def audience(
    db: Database,
    segment_id: str,
    channel: ConsentType,
    *,
    page: int = DEFAULT_PAGE,
    streams: int = DEFAULT_STREAMS,
) -> AsyncIterator[list[Recipient]]:
    """Every recipient once, a page at a time (each page its own short
    transaction), read by `streams` readers side by side.

    The contact ids are split into `streams` equal ranges (ids are random
    UUIDs: about as many people in each), each read in id order by its own
    reader; their pages come out in turn, each in id order. PostgreSQL's
    part is most of the time and a page's query uses one core, so two
    readers take about half as long on two cores. Memory stays flat: each
    reader holds its page and the one ahead."""
    _opted_in(channel)  # an unknown channel fails before any page
    if streams < 1:
        raise ValueError("at least one stream")
    readers = [
        _range_pages(db, segment_id, channel, page, after, upto)
        for after, upto in _id_ranges(streams)
    ]
    try:
        while readers:
            for reader in list(readers):
                found = await anext(reader, None)
                if found is None:
                    readers.remove(reader)
                elif found:
                    yield found
    finally:
        for reader in readers:
            await reader.aclose()


def _id_ranges(streams: int) -> list[tuple[uuid.UUID | None, uuid.UUID | None]]:
    """`streams` ranges of ids, each (after, upto]: None for no bound."""
    width = 2**128 // streams
    bounds = [uuid.UUID(int=n * width - 1) for n in range(1, streams)]
    return list(zip([None, *bounds], [*bounds, None], strict=True))


async def _range_pages(
    db: Database,
    segment_id: str,
    channel: ConsentType,
    page: int,
    first_after: uuid.UUID | None,
    upto: uuid.UUID | None,
) -> AsyncGenerator[list[Recipient]]:
    """The recipients with ids in (first_after, upto], a page at a time, one
    page ahead: the next page's transaction is open before this page's query
    returns, and its query goes out as soon as this page's last id is known,
    so PostgreSQL computes it while this process makes this page's
    recipients and the caller uses them."""
    loop = asyncio.get_running_loop()

    def fetch(
        after: asyncio.Future[uuid.UUID | None],
    ) -> tuple[asyncio.Task[_Arrays], asyncio.Future[uuid.UUID | None]]:
        following: asyncio.Future[uuid.UUID | None] = loop.create_future()
        task = _page(db, segment_id, channel, page, after, upto, following)
        return loop.create_task(task), following

    start: asyncio.Future[uuid.UUID | None] = loop.create_future()
    start.set_result(first_after)
    current, after = fetch(start)
    ahead, following = fetch(after)
    try:
        while True:
            found = await current
            yield _recipients(found)
            if len(found[0]) < page:
                return
            current, after = ahead, following
            ahead, following = fetch(after)
    finally:
        after.cancel()  # the page ahead, if never asked for, stops waiting for it
        await asyncio.gather(current, ahead, return_exceptions=True)


_Arrays = tuple[Sequence[uuid.UUID], Sequence[str], Sequence[str | None]]


async def _page(
    db: Database,
    segment_id: str,
    channel: ConsentType,
    limit: int,
    after: asyncio.Future[uuid.UUID | None],
    upto: uuid.UUID | None,
    following: asyncio.Future[uuid.UUID | None],
) -> _Arrays:
    """The page after the id `after` will give, in a transaction opened
    before it does (read-only: its first statement begins it now). The id
    the next page starts after goes to `following` as soon as it is known,
    before this transaction ends; a short page cancels it: no page follows."""
    async with db.transaction() as session:
        await session.execute(text("SET TRANSACTION READ ONLY"))
        query = _page_query(segment_id, channel, await after, limit, upto)
        found = await _fetch(session, query)
        if len(found[0]) < limit:
            following.cancel()
        elif not following.done():  # else the caller has stopped
            following.set_result(found[0][-1])
        return found


def _page_query(
    segment_id: str,
    channel: ConsentType,
    after: uuid.UUID | None,
    limit: int,
    upto: uuid.UUID | None = None,
) -> Select[Any, Any, Any]:
    """The page as one row of three arrays (ids, emails, phones) in id order:
    a row object per recipient cost more than the query itself."""
    # The member's contact, when it is a recipient. Walked member by member in
    # id order from `after`: OFFSET 0 keeps this a lookup per member, which
    # PostgreSQL would otherwise flatten into a join it may plan as a hash
    # join over every contact (it did for the pages near the end of the id
    # range: half a second each instead of 40 ms).
    wanted = [Contact.id == SegmentMembership.contact_id, *may_receive(channel)]
    contact = select(Contact.id, Contact.email, Contact.phone).where(*wanted).offset(0).lateral()
    members = SegmentMembership.segment == segment_id
    if after is not None:
        members = and_(members, SegmentMembership.contact_id > after)
    if upto is not None:
        members = and_(members, SegmentMembership.contact_id <= upto)
    found = (
        select(contact.c.id, contact.c.email, contact.c.phone)
        .select_from(SegmentMembership)
        .join(contact, true())
        .where(members)
        .order_by(SegmentMembership.contact_id)
        .limit(limit)
        .subquery()
    )
    return select(
        func.array_agg(aggregate_order_by(found.c.id, found.c.id)),
        func.array_agg(aggregate_order_by(found.c.email, found.c.id)),
        func.array_agg(aggregate_order_by(found.c.phone, found.c.id)),
    )


async def _fetch(session: AsyncSession, query: Select[Any, Any, Any]) -> _Arrays:
    ids, emails, phones = (await session.execute(query)).one()
    if ids is None:  # no row: the aggregates of nothing
        return [], [], []
    return ids, emails, phones


# Why a contact may not receive a message on a channel, in the order they are told.
SUPPRESSED = "suppressed"
NO_CONSENT = "no_consent"
NO_PHONE = "no_phone"
NO_DEVICE = "no_device"


def exclusions(channel: ConsentType) -> list[tuple[ColumnElement[bool], str]]:
    """What keeps a contact row from messages on `channel`, each with its reason, in
    order: the address suppressed (for SMS, or the number: Property 23), no consent
    for it on record, for SMS no phone (Property 21), for push no device (Property
    24). Audiences and provider lists take the rows none holds for (`may_receive`);
    a campaign records the first that holds (campaigns.audience)."""
    address: ColumnElement[bool] = exists().where(
        Suppression.email_sha256 == email_key_sql(Contact.email)
    )
    if channel is ConsentType.SMS:
        number = and_(Contact.phone.is_not(None), sms_suppression.is_suppressed_sql(Contact.phone))
        address = address | number
    found = [(address, SUPPRESSED), (not_(_opted_in(channel)), NO_CONSENT)]
    if channel is ConsentType.SMS:
        found.append((Contact.phone.is_(None), NO_PHONE))
    if channel is ConsentType.PUSH:
        found.append((not_(push_tokens.has_token_sql(Contact.id)), NO_DEVICE))
    return found


def may_receive(channel: ConsentType) -> list[ColumnElement[bool]]:
    """What a contact row meets when it may receive messages on `channel`: none of
    its `exclusions`. Provider lists (segments.lists) keep the email audience by
    the same test."""
    return [not_(excluded) for excluded, _ in exclusions(channel)]


def _opted_in(channel: ConsentType) -> Any:
    opted_in = _CHANNELS.get(channel)
    if opted_in is None:
        raise ValueError(f"{channel} is not a messaging channel")
    return opted_in


def _recipients(found: _Arrays) -> list[Recipient]:
    return [Recipient(*recipient) for recipient in zip(*found, strict=True)]
