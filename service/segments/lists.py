"""A linked segment's email audience kept in its provider list.

The list holds the segment's members who may be emailed: email consent on
record, not suppressed (what `audiences` resolves for the email channel). A
provider list is where the provider's own campaigns and flows find people,
and an ActiveCampaign list subscription makes a person emailable, so nobody
without consent is ever put in one.

`sync` compares who belongs in each linked list with who was last sent into
it (`marketing_segment_list_member`) and queues a `ListMembershipChanged` for
each difference, in the transaction that changed membership or consent. It
runs where those change: the segment refresher's drain (a contact's upsert,
consent, unsubscribe, events, and the people a relative round moved), a
whole evaluation of a new or changed filter, a manual segment's adds and
removes, and linking itself. A consent change's own outbox row is written
before its contact is drained, so a withdrawal reaches the provider before the
list leave it causes, and a grant before the join. An erased person's rows go
with the contact; the provider's erasure takes them out of every list.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.kinds import Kind
from sqlalchemy import (
    ARRAY,
    Select,
    Uuid,
    any_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation
from service.deliveries import outbox
from service.segments.audiences import may_receive
from service.storage.models import (
    ConsentType,
    Contact,
    Segment,
    SegmentListMember,
    SegmentMembership,
)

_IDS = ARRAY(Uuid)
_LIST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Rows written per statement when a whole segment's list is filled.
_CHUNK = 5000
KIND_NAME = kinds.name(bus_pb2.KIND_LIST_MEMBERSHIP_CHANGED)
# The class of the per-segment advisory locks of list syncs ("segl").
_LIST_SYNC_LOCK = 0x7365676C


@dataclass(frozen=True)
class ListLink:
    """A segment's provider list as callers see it."""

    list_id: str  # "" until the provider found or created it
    last_sync_at: datetime | None
    pending_changes: int


def valid_list_id(list_id: str) -> bool:
    return list_id == "" or _LIST_ID.fullmatch(list_id) is not None


async def link(session: AsyncSession, segment: Segment, list_id: str, now: datetime) -> None:
    """Keep `segment`'s email audience in the provider list `list_id` ("" to
    find or create one named after the segment) from now on. Linking to
    another list starts afresh (a new link): everyone in the audience joins
    it. Asking again for the list it has (by id, or by name once found) changes
    nothing. The caller holds the whole-evaluation lock: no drain meanwhile."""
    by_name = not list_id
    if segment.list_linked and (
        (by_name and segment.list_name is not None) or (not by_name and segment.list_id == list_id)
    ):
        return
    if list_id:
        await _refuse_list_in_use(session, segment, list_id)
    await _forget(session, segment)
    segment.list_linked = True
    segment.list_id = list_id or None
    segment.list_name = segment.display_name if by_name else None
    segment.list_link_id = uuid.uuid4()
    segment.list_synced_at = None
    await session.flush()
    await sync(session, now, segment_ids=[segment.id])


async def unlink(session: AsyncSession, segment: Segment) -> None:
    """Stop keeping the list: the provider's list is left as it is."""
    if not segment.list_linked:
        return
    await _forget(session, segment)
    segment.list_linked = False
    segment.list_id = None
    segment.list_name = None
    segment.list_link_id = None
    segment.list_synced_at = None


async def _refuse_list_in_use(session: AsyncSession, segment: Segment, list_id: str) -> None:
    other = await session.scalar(
        select(Segment.id).where(
            Segment.list_linked, Segment.list_id == list_id, Segment.id != segment.id
        )
    )
    if other is not None:
        raise ListInUse(list_id, other)


class ListInUse(Exception):
    """The list keeps another segment's audience (each would take people out of it)."""

    def __init__(self, list_id: str, segment_id: str) -> None:
        super().__init__(f"list {list_id} keeps segment {segment_id}")
        self.list_id = list_id
        self.segment_id = segment_id


async def _forget(session: AsyncSession, segment: Segment) -> None:
    await session.execute(
        delete(SegmentListMember).where(SegmentListMember.segment_id == segment.id)
    )


async def sync(
    session: AsyncSession,
    now: datetime,
    *,
    segment_ids: Sequence[str] | None = None,
    contact_ids: Sequence[uuid.UUID] | None = None,
) -> int:
    """Queue the joins and leaves that bring the linked segments' lists (all,
    or `segment_ids`) to their email audiences, for every contact or only
    `contact_ids`; how many were queued."""
    if (segment_ids is not None and not segment_ids) or (
        contact_ids is not None and not contact_ids
    ):
        return 0
    query = select(Segment).where(Segment.list_linked).order_by(Segment.id)
    if segment_ids is not None:
        query = query.where(Segment.id.in_(list(segment_ids)))
    queued = 0
    for segment in await session.scalars(query):
        queued += await _sync_segment(session, segment, now, contact_ids)
    return queued


async def _sync_segment(
    session: AsyncSession,
    segment: Segment,
    now: datetime,
    contact_ids: Sequence[uuid.UUID] | None,
) -> int:
    # One sync of a segment's list at a time, until commit: two drains holding
    # changes of one person would each compare with what the other has not yet
    # committed, and a join decided before a withdrawal could stay unanswered.
    # Taken in segment id order (see `sync`), so syncs never wait on each other
    # in a cycle; the comparison after it sees what the one before committed.
    await session.execute(
        select(func.pg_advisory_xact_lock(_LIST_SYNC_LOCK, func.hashtext(segment.id)))
    )
    changes = (await session.execute(_differences(segment.id, contact_ids))).all()
    for start in range(0, len(changes), _CHUNK):
        await _queue(session, segment, changes[start : start + _CHUNK], now)
    return len(changes)


def _differences(segment_id: str, contact_ids: Sequence[uuid.UUID] | None) -> Select[Any]:
    """(contact id, email, belongs) of each contact whose place in the list
    differs from what was last sent, in contact id order."""
    belonging = (
        select(Contact.id.label("id"))
        .join(SegmentMembership, SegmentMembership.contact_id == Contact.id)
        .where(SegmentMembership.segment == segment_id, *may_receive(ConsentType.EMAIL))
    )
    sent = select(SegmentListMember.contact_id.label("id")).where(
        SegmentListMember.segment_id == segment_id, SegmentListMember.in_list
    )
    if contact_ids is not None:
        scope = bindparam(None, list(contact_ids), _IDS)
        belonging = belonging.where(Contact.id == any_(scope))
        sent = sent.where(SegmentListMember.contact_id == any_(scope))
    wanted, held = belonging.cte("belonging"), sent.cte("sent")
    differing = union_all(
        select(wanted.c.id, literal(True).label("belongs")).where(
            ~exists().where(held.c.id == wanted.c.id)
        ),
        select(held.c.id, literal(False).label("belongs")).where(
            ~exists().where(wanted.c.id == held.c.id)
        ),
    ).subquery("differing")
    return (
        select(Contact.id, Contact.email, differing.c.belongs)
        .join(differing, differing.c.id == Contact.id)
        .order_by(Contact.id)
    )


async def _queue(
    session: AsyncSession,
    segment: Segment,
    changes: Sequence[tuple[uuid.UUID, str, bool]],
    now: datetime,
) -> None:
    """One outbox row per change, and the decision recorded with its row's id."""
    rows: list[tuple[str, Kind, bytes]] = []
    ids: list[uuid.UUID] = []
    members: list[dict[str, object]] = []
    for contact_id, email, belongs in changes:
        payload = bus_pb2.ListMembershipChanged(
            segment_id=segment.id,
            list_id=segment.list_id or "",
            list_name=segment.list_name or "",
            email=email,
            member=belongs,
            link_id=str(segment.list_link_id),
        )
        key = validation.normalized_email_key(email)
        rows.append((key, bus_pb2.KIND_LIST_MEMBERSHIP_CHANGED, payload.SerializeToString()))
        ids.append(uuid.uuid4())
        members.append(
            {"segment_id": segment.id, "contact_id": contact_id, "in_list": belongs}
            | {"outbox_id": ids[-1]}
        )
    await outbox.enqueue_many(session, rows, now=now, ids=ids)
    statement = pg_insert(SegmentListMember).values(members)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[SegmentListMember.segment_id, SegmentListMember.contact_id],
            set_={"in_list": statement.excluded.in_list, "outbox_id": statement.excluded.outbox_id},
        )
    )


@dataclass(frozen=True)
class ListResult:
    """What became of one list change: `accepted` by the provider (not
    superseded), or `failed` for good; `found_list_id` is the list the
    dispatcher found or created by name for it ("" when the change named one)."""

    outbox_id: uuid.UUID
    data: bytes
    accepted: bool
    failed: bool
    found_list_id: str


async def record_results(
    session: AsyncSession, results: Sequence[ListResult], now: datetime
) -> None:
    """List changes' results: none is pending any more; a failed one's decision
    is undone (the next sync of that person decides again); an accepted one
    marks its link's list synced now, and a list found by name becomes the
    link's list id. Results of an earlier link change nothing of the segment.
    Segment rows first, in id order, then member rows: UpdateSegment locks in
    that order too."""
    synced: dict[tuple[str, str], str] = {}
    for r in results:
        if r.accepted:
            change = outbox.payload(KIND_NAME, r.data)
            key = (change.segment_id, change.link_id)
            synced[key] = synced.get(key) or r.found_list_id
    for (segment_id, link_id), found in sorted(synced.items()):
        params = {"id": segment_id, "link": link_id, "found": found, "now": now}
        await session.execute(_SYNCED, params)
    if not results:
        return
    failed = [r.outbox_id for r in results if r.failed]
    await session.execute(
        update(SegmentListMember)
        .where(
            SegmentListMember.outbox_id
            == any_(bindparam(None, [r.outbox_id for r in results], _IDS))
        )
        .values(
            outbox_id=None,
            in_list=case(
                (
                    SegmentListMember.outbox_id == any_(bindparam(None, failed, _IDS)),
                    ~SegmentListMember.in_list,
                ),
                else_=SegmentListMember.in_list,
            ),
        )
    )


# A list found by name is taken only while no other segment keeps that list.
_SYNCED = text(
    "UPDATE marketing_segment SET list_synced_at = :now, list_id = CASE "
    "WHEN list_id IS NULL AND :found <> '' AND NOT EXISTS (SELECT 1 FROM marketing_segment o "
    "WHERE o.list_linked AND o.list_id = :found) THEN :found ELSE list_id END "
    "WHERE id = :id AND list_linked AND CAST(list_link_id AS text) = :link"
)


async def views(session: AsyncSession, segments: Sequence[Segment]) -> list[ListLink | None]:
    """Each segment's list link as `GetSegment` shows it (None when it has
    none): the pending changes of every linked one counted in one query."""
    linked = [s.id for s in segments if s.list_linked]
    pending: dict[str, int] = {}
    if linked:
        rows = await session.execute(
            select(SegmentListMember.segment_id, func.count())
            .where(
                SegmentListMember.segment_id.in_(linked),
                SegmentListMember.outbox_id.is_not(None),
            )
            .group_by(SegmentListMember.segment_id)
        )
        pending = {segment_id: int(count) for segment_id, count in rows}
    return [
        ListLink(s.list_id or "", s.list_synced_at, pending.get(s.id, 0)) if s.list_linked else None
        for s in segments
    ]
