"""Keeping dynamic segments' members: a whole segment evaluated at once (on
creation, a filter change, or as relative windows move), or every segment of
the contacts that changed, in batches: a change records its contact as
pending in its own transaction (`mark_changed`, `mark_people`) and the
segment refresher drains them (`drain`), a few thousand per evaluation.

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
    Select,
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
    text,
    true,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.metrics import (
    SEGMENT_CHANGES,
    SEGMENT_EVALUATION_DURATION,
    SEGMENT_MEMBERS,
    SEGMENT_MEMBERSHIP_LAG,
)
from service.segments import filters, lists
from service.segments.sql import compile_filter
from service.storage.database import after_commit
from service.storage.fresh_plans import execute_afresh
from service.storage.models import (
    Contact,
    Segment,
    SegmentChange,
    SegmentKind,
    SegmentMembership,
    SegmentPending,
)

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
    *,
    recheck: bool = False,
) -> Evaluated:
    """Bring the segment's members in line with `node` at `now`: for every
    contact, or only for `contact_ids`. With `recheck`, every contact that
    joined or left is also marked pending, for a drain to evaluate again
    (see `refresh_relative`)."""
    scope = "segment" if contact_ids is None else "contacts"
    with SEGMENT_EVALUATION_DURATION.labels(scope).time():
        return await _evaluate(session, segment_id, node, now, contact_ids, recheck)


async def _evaluate(
    session: AsyncSession,
    segment_id: str,
    node: filters.Node,
    now: datetime,
    contact_ids: Sequence[uuid.UUID] | None,
    recheck: bool,
) -> Evaluated:
    matching = (
        select(Contact.id).where(compile_filter(node, now))
        if contact_ids is None
        else _matching_among(node, now, contact_ids)
    )
    # Materialized: referenced once by each statement, PostgreSQL would inline
    # it into the leave's NOT EXISTS and, once contacts have statistics, re-run
    # the grouped event subquery per member (minutes at a million contacts).
    matching_cte = matching.cte("matching").prefix_with("MATERIALIZED")
    # Joins and leaves take their rows in contact id order, whoever evaluates
    # (a drain, a relative round, a new filter): two evaluations of one
    # segment touching the same people never wait on each other in a cycle.
    joined = (
        pg_insert(SegmentMembership)
        .from_select(
            ["contact_id", "segment", "added_at"],
            select(matching_cte.c.id, literal(segment_id), literal(now)).order_by(
                matching_cte.c.id
            ),
        )
        .on_conflict_do_nothing()
        .returning(SegmentMembership.contact_id)
        .cte("joined")
    )
    leaving = select(SegmentMembership.contact_id).where(
        SegmentMembership.segment == segment_id,
        # NOT EXISTS, an anti-join: NOT IN over half a million ids outgrows
        # work_mem and is then checked row by row.
        ~exists().where(matching_cte.c.id == SegmentMembership.contact_id),
    )
    if contact_ids is not None:
        leaving = leaving.where(
            SegmentMembership.contact_id == any_(bindparam(None, list(contact_ids), _IDS))
        )
    locked = leaving.order_by(SegmentMembership.contact_id).with_for_update().cte("locked")
    gone = delete(SegmentMembership).where(
        SegmentMembership.segment == segment_id,
        SegmentMembership.contact_id.in_(select(locked.c.contact_id)),
    )
    left = gone.returning(SegmentMembership.contact_id).cte("left")
    joins = await _record(session, segment_id, joined.c.contact_id, True, now, recheck)
    leaves = await _record(session, segment_id, left.c.contact_id, False, now, recheck)
    after_commit(session, lambda: _count(joins, leaves))
    return Evaluated(joins, leaves)


def _matching_among(
    node: filters.Node, now: datetime, contact_ids: Sequence[uuid.UUID]
) -> Select[tuple[uuid.UUID]]:
    """The contacts of `contact_ids` that match, each looked up by its id and
    then tested (LATERAL, OFFSET 0: never flattened). As a plain filter beside
    `id = ANY(...)`, PostgreSQL may scan every contact and run the per-person
    event probes on each before the id test (a drain of 2,000 then took
    minutes at a million contacts)."""
    scope = (
        func.unnest(bindparam(None, list(contact_ids), _IDS))
        .table_valued("id")
        .render_derived("scope")
    )
    candidate = (
        select(Contact.id)
        .where(Contact.id == scope.c.id, compile_filter(node, now, few=True))
        .offset(0)
        .lateral("candidate")
    )
    return select(candidate.c.id).select_from(scope).join(candidate, true())


def record_changes(
    session: AsyncSession,
    segment_id: str,
    contact_ids: Sequence[uuid.UUID],
    joined: bool,
    now: datetime,
) -> None:
    """Record joins or leaves made outside an evaluation (a manual segment's
    members, the newsletter's subscribe and unsubscribe), counted once the
    transaction commits."""
    session.add_all(
        SegmentChange(segment_id=segment_id, contact_id=c, joined=joined, changed_at=now)
        for c in contact_ids
    )
    count = len(contact_ids)
    after_commit(session, lambda: _count(count if joined else 0, 0 if joined else count))


def _count(joins: int, leaves: int) -> None:
    SEGMENT_CHANGES.labels("joined").inc(joins)
    SEGMENT_CHANGES.labels("left").inc(leaves)


async def _record(
    session: AsyncSession,
    segment_id: str,
    contact_ids: Any,
    joined: bool,
    now: datetime,
    recheck: bool,
) -> int:
    """Run the join or leave CTE and record each change it made (and, with
    `recheck`, mark its contact pending); how many."""
    changes = select(literal(segment_id), contact_ids, literal(joined), literal(now))
    statement: Any = insert(SegmentChange).from_select(
        ["segment_id", "contact_id", "joined", "changed_at"], changes
    )
    if recheck:
        recorded = statement.returning(SegmentChange.contact_id).cte("recorded")
        statement = insert(SegmentPending).from_select(
            ["contact_id", "since"], select(recorded.c.contact_id, literal(now))
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


# Transaction-scoped advisory locks ("segp", "sege"). A whole evaluation of a
# new or changed filter holds the first exclusively and every drain shares it:
# a change drained meanwhile would otherwise meet neither (the evaluation's
# snapshot predates it, the drain cannot see the new filter). Relative rounds
# share it with the drains (see `refresh_relative`).
# Event writers share the second, which creating or changing a segment with
# event conditions holds exclusively: they decide whether events need a
# re-evaluation by whether such a segment exists, and must not decide it just
# before one commits.
_DRAIN_LOCK = 0x73656770
_EVENT_SEGMENTS_LOCK = 0x73656765


async def mark_changed(
    session: AsyncSession, contact_ids: Sequence[uuid.UUID], since: datetime
) -> None:
    """Have these contacts' dynamic segments re-evaluated, in the refresher's
    next batch: recorded in the change's own transaction, so no committed
    change goes unevaluated (a row per change: drains see it once it commits)."""
    if not contact_ids:
        return
    rows = [{"contact_id": c, "since": since} for c in sorted(set(contact_ids))]
    await session.execute(insert(SegmentPending).values(rows))


async def mark_people(
    session: AsyncSession, events: Sequence[tuple[str, str]], since: datetime
) -> None:
    """`mark_changed` for the contacts with the emails of these (email, event
    type) pairs whose type some dynamic segment counts: an event of a type no
    segment counts changes no membership, and costs one statement."""
    if not events:
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": _EVENT_SEGMENTS_LOCK}
    )
    counted = (
        select(func.unnest(Segment.event_types))
        .where(Segment.kind == SegmentKind.DYNAMIC)
        .scalar_subquery()
    )
    pairs = sorted(set(events))
    emails = bindparam(None, [email for email, _ in pairs], ARRAY(String))
    types = bindparam(None, [kind for _, kind in pairs], ARRAY(String))
    logged = func.unnest(emails, types).table_valued("email", "type").render_derived("logged")
    relevant = select(logged.c.email).where(logged.c.type.in_(counted))
    people = (
        select(Contact.id, literal(since)).where(Contact.email.in_(relevant)).order_by(Contact.id)
    )
    statement = insert(SegmentPending).from_select(["contact_id", "since"], people)
    await session.execute(statement)


async def hold_beside_drains(session: AsyncSession) -> None:
    """Taken by a drain or a relative round, until it ends: they go on side
    by side (they share it), a new or changed filter waits (see the locks
    above)."""
    await session.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": _DRAIN_LOCK})


async def hold_for_whole_evaluation(session: AsyncSession, counts_events: bool) -> None:
    """Taken by a transaction about to evaluate segments as a whole (see the
    locks above), until it ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DRAIN_LOCK})
    if counts_events:
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EVENT_SEGMENTS_LOCK}
        )


async def drain(session: AsyncSession, now: datetime, limit: int) -> int:
    """Take up to `limit` waiting contacts (none another replica holds) and
    evaluate every dynamic segment for them at once; how many were taken.
    The membership lag (first change to membership recorded) is observed
    per contact once the transaction commits."""
    await hold_beside_drains(session)
    waiting = (
        select(SegmentPending.id)
        .order_by(SegmentPending.id)  # oldest first: no contact starves
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    taken = await execute_afresh(
        session,
        delete(SegmentPending)
        .where(SegmentPending.id.in_(waiting))
        .returning(SegmentPending.contact_id, SegmentPending.since),
    )
    first_change: dict[uuid.UUID, datetime] = {}
    for contact_id, since in taken.all():
        first_change[contact_id] = min(since, first_change.get(contact_id, since))
    if not first_change:
        return 0
    contact_ids = sorted(first_change)
    for segment in in_dependency_order(await _dynamic(session)):
        await _evaluate_row(session, segment, now, contact_ids)
    # Their membership or consent changed: so may their place in provider lists.
    await lists.sync(session, now, contact_ids=contact_ids)
    lags = [max(0.0, (now - since).total_seconds()) for since in first_change.values()]
    after_commit(session, lambda: _observe_lags(lags))
    return len(first_change)


def _observe_lags(lags: Sequence[float]) -> None:
    for lag in lags:
        SEGMENT_MEMBERSHIP_LAG.observe(lag)


async def refresh_relative(session: AsyncSession, now: datetime) -> int:
    """Re-evaluate as a whole every segment whose membership moves with time
    (a window measured from now), and those referring to them; how many.

    Drains go on meanwhile: a round of a million contacts takes seconds, and
    holding the drain lock exclusively that long would hold up every change's
    membership. The round shares it, as drains do: what it keeps out is a new
    or changed filter, which must not be evaluated beside it. A drain waits
    only for the people the round moves, until the round commits (both take
    those rows in id order). A contact changed during the round may be judged
    by the round on what it read before the change; so each contact the
    round moves is also marked pending, and a drain after the round's commit
    judges it again on what is current then (contacts the round leaves alone
    are the drains' to judge, as always). That drain also brings their places
    in provider lists along, for them alone: the round does not compare whole
    lists."""
    segments = _changed_by(await _dynamic(session), lambda s: s.relative)
    if segments:
        await hold_beside_drains(session)
    for segment in segments:
        await _evaluate_row(session, segment, now, None, recheck=True)
        segment.evaluated_at = now
    return len(segments)


async def refresh_dependents(session: AsyncSession, segment_id: str, now: datetime) -> list[str]:
    """Re-evaluate as a whole the segments referring to `segment_id`, directly
    or through others, after its members changed as a whole; their ids."""
    segments = await _dynamic(session)
    changed = _changed_by(segments, lambda s: segment_id in s.depends_on)
    for segment in changed:
        await _evaluate_row(session, segment, now, None)
    return [segment.id for segment in changed]


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
    *,
    recheck: bool = False,
) -> None:
    assert segment.filter is not None
    node = filters.from_json(segment.filter)
    await evaluate(session, segment.id, node, now, contact_ids, recheck=recheck)


def _changed_by(segments: Sequence[Segment], direct: Callable[[Segment], bool]) -> list[Segment]:
    """The segments `direct` says can change, and those referring to them, in
    the dependency order of all of them: every transaction visits any two
    segments in one order, whichever subset it visits (no lock cycles)."""
    changed = {s.id for s in segments if direct(s)}
    grew = True
    while grew:
        more = {s.id for s in segments if s.id not in changed and changed & set(s.depends_on)}
        changed |= more
        grew = bool(more)
    return [s for s in in_dependency_order(segments) if s.id in changed]


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
