"""Keeping dynamic segments' members: a whole segment evaluated at once (on
creation, a filter change, or as relative windows move), or the segments of
a few contacts re-evaluated in the transaction that changed them.

Each evaluation is two statements, whatever the number of people: the
matching contacts not yet members join, the members no longer matching
leave, and each join or leave is recorded with its time in
marketing_segment_change (data-modifying CTEs: nothing goes through Python).
Segments that refer to others are evaluated after them (`in_dependency_order`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    String,
    Uuid,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.metrics import (
    SEGMENT_CHANGES,
    SEGMENT_EVALUATION_DURATION,
    SEGMENT_MEMBERS,
    SEGMENT_MEMBERSHIP_LAG,
)
from service.segments import filters
from service.segments.sql import compile_filter
from service.storage.database import after_commit
from service.storage.models import Contact, Segment, SegmentChange, SegmentKind, SegmentMembership

_IDS = ARRAY(Uuid)


@dataclass(frozen=True)
class Evaluated:
    joined: int
    left: int


async def evaluate(
    session: AsyncSession,
    segment_id: str,
    node: filters.Node,
    now: datetime,
    contact_ids: Sequence[uuid.UUID] | None = None,
) -> Evaluated:
    """Bring the segment's members in line with `node` at `now`: for every
    contact, or only for `contact_ids`."""
    scope = "segment" if contact_ids is None else "contacts"
    with SEGMENT_EVALUATION_DURATION.labels(scope).time():
        return await _evaluate(session, segment_id, node, now, contact_ids)


async def _evaluate(
    session: AsyncSession,
    segment_id: str,
    node: filters.Node,
    now: datetime,
    contact_ids: Sequence[uuid.UUID] | None,
) -> Evaluated:
    few = contact_ids is not None
    matching = select(Contact.id).where(compile_filter(node, now, few=few))
    if contact_ids is not None:
        matching = matching.where(Contact.id == any_(bindparam(None, list(contact_ids), _IDS)))
    matching_cte = matching.cte("matching")
    joined = (
        pg_insert(SegmentMembership)
        .from_select(
            ["contact_id", "segment", "added_at"],
            select(matching_cte.c.id, literal(segment_id), literal(now)),
        )
        .on_conflict_do_nothing()
        .returning(SegmentMembership.contact_id)
        .cte("joined")
    )
    gone = delete(SegmentMembership).where(
        SegmentMembership.segment == segment_id,
        # NOT EXISTS, an anti-join: NOT IN over half a million ids outgrows
        # work_mem and is then checked row by row.
        ~exists().where(matching_cte.c.id == SegmentMembership.contact_id),
    )
    if contact_ids is not None:
        gone = gone.where(
            SegmentMembership.contact_id == any_(bindparam(None, list(contact_ids), _IDS))
        )
    left = gone.returning(SegmentMembership.contact_id).cte("left")
    joins = await _record(session, segment_id, joined.c.contact_id, True, now)
    leaves = await _record(session, segment_id, left.c.contact_id, False, now)
    after_commit(session, lambda: _count(joins, leaves))
    return Evaluated(joins, leaves)


def _count(joins: int, leaves: int) -> None:
    SEGMENT_CHANGES.labels("joined").inc(joins)
    SEGMENT_CHANGES.labels("left").inc(leaves)


async def _record(
    session: AsyncSession, segment_id: str, contact_ids: Any, joined: bool, now: datetime
) -> int:
    """Run the join or leave CTE and record each change it made; how many."""
    changes = select(literal(segment_id), contact_ids, literal(joined), literal(now))
    statement = insert(SegmentChange).from_select(
        ["segment_id", "contact_id", "joined", "changed_at"], changes
    )
    result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def in_dependency_order(segments: Sequence[Segment]) -> list[Segment]:
    """`segments` with each one after the segments its filter refers to (the
    references have no cycles: creation and updates refuse them)."""
    by_id = {s.id: s for s in segments}
    ordered: list[Segment] = []
    seen: set[str] = set()

    def visit(segment: Segment) -> None:
        if segment.id in seen:
            return
        seen.add(segment.id)
        for dependency in segment.depends_on:
            if dependency in by_id:
                visit(by_id[dependency])
        ordered.append(segment)

    for segment in segments:
        visit(segment)
    return ordered


async def refresh_contacts(
    session: AsyncSession, contact_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Re-evaluate every dynamic segment for these contacts, in the
    transaction that changed them."""
    if not contact_ids:
        return
    for segment in in_dependency_order(await _dynamic(session)):
        await _evaluate_row(session, segment, now, contact_ids)


async def refresh_after_events(
    session: AsyncSession,
    emails: Sequence[str],
    now: datetime,
    oldest_accepted: datetime | None = None,
) -> None:
    """Re-evaluate, for the people of these events, the segments an event can
    change (in the event-log writer's transaction). Without such segments
    this costs one small query. `oldest_accepted`: when the oldest of the
    events was accepted (the membership lag it observes)."""
    segments = _changed_by(await _dynamic(session), lambda s: s.has_events)
    if not segments or not emails:
        return
    if oldest_accepted is not None:
        SEGMENT_MEMBERSHIP_LAG.observe(max(0.0, (now - oldest_accepted).total_seconds()))
    listed = bindparam(None, list(emails), ARRAY(String))
    found = await session.scalars(select(Contact.id).where(Contact.email == any_(listed)))
    contact_ids = list(found)
    for segment in in_dependency_order(segments):
        await _evaluate_row(session, segment, now, contact_ids)


async def refresh_relative(session: AsyncSession, now: datetime) -> int:
    """Re-evaluate as a whole every segment whose membership moves with time
    (a window measured from now), and those referring to them; how many."""
    segments = _changed_by(await _dynamic(session), lambda s: s.relative)
    for segment in in_dependency_order(segments):
        await _evaluate_row(session, segment, now, None)
        segment.evaluated_at = now
    return len(segments)


async def refresh_dependents(session: AsyncSession, segment_id: str, now: datetime) -> None:
    """Re-evaluate as a whole the segments referring to `segment_id`, directly
    or through others, after its members changed as a whole."""
    segments = await _dynamic(session)
    changed = _changed_by(segments, lambda s: segment_id in s.depends_on)
    for segment in in_dependency_order(changed):
        await _evaluate_row(session, segment, now, None)


async def _dynamic(session: AsyncSession) -> list[Segment]:
    """The dynamic segments, in id order (so concurrent transactions visit
    them in one order)."""
    query = select(Segment).where(Segment.kind == SegmentKind.DYNAMIC).order_by(Segment.id)
    return list(await session.scalars(query))


async def _evaluate_row(
    session: AsyncSession,
    segment: Segment,
    now: datetime,
    contact_ids: Sequence[uuid.UUID] | None,
) -> None:
    assert segment.filter is not None
    await evaluate(session, segment.id, filters.from_json(segment.filter), now, contact_ids)


def _changed_by(segments: Sequence[Segment], direct: Callable[[Segment], bool]) -> list[Segment]:
    """The segments `direct` says can change, and those referring to them."""
    changed = {s.id for s in segments if direct(s)}
    grew = True
    while grew:
        more = {s.id for s in segments if s.id not in changed and changed & set(s.depends_on)}
        changed |= more
        grew = bool(more)
    return [s for s in segments if s.id in changed]


async def count_members(session: AsyncSession) -> dict[str, int]:
    """Every segment's size (the `marketing_segment_members` gauge)."""
    rows = await session.execute(
        select(Segment.id, func.count(SegmentMembership.contact_id))
        .outerjoin(SegmentMembership, SegmentMembership.segment == Segment.id)
        .group_by(Segment.id)
    )
    sizes = {segment_id: int(count) for segment_id, count in rows}
    for segment_id, count in sizes.items():
        SEGMENT_MEMBERS.labels(segment_id).set(count)
    for gone in _gauged - set(sizes):
        SEGMENT_MEMBERS.remove(gone)
    _gauged.clear()
    _gauged.update(sizes)
    return sizes


_gauged: set[str] = set()
