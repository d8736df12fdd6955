"""Segments as callers see them: create, read, list, update, delete, their
members (listed, added, removed) and a filter's preview.

A dynamic segment's members are evaluated when it is created or its filter
changes, and kept up to date from then on (segments.membership). A manual
segment's members are whoever was added. The built-in newsletter segment
(`segments/newsletter`) is manual, kept by SubscribeNewsletter and
Unsubscribe, and cannot be deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.consent import unsubscribing
from service.contacts.rules import (
    NEWSLETTER_SEGMENT,
    ContactView,
    contact_views,
    parse_contact_name,
)
from service.errors import AlreadyExistsError, FailedPreconditionError, NotFoundError, Violations
from service.segments import filters, lists, membership
from service.segments.names import segment_name, valid_segment_id
from service.segments.sql import compile_filter
from service.storage.database import Database
from service.storage.models import Contact, Segment, SegmentMembership
from service.storage.models import SegmentKind as SegmentKind  # handlers name kinds by it

RESOURCE_TYPE = "segment"
MAX_DISPLAY_NAME = 200
MAX_DESCRIPTION = 2000
MAX_MEMBERS_PER_CALL = 1000
MAX_SAMPLE = 100
DEFAULT_SAMPLE = 10
SEGMENT_PAGES = Paging(scope="segments", key=(KeyKind.TIME, KeyKind.NAME))
_UPDATABLE = ("display_name", "description", "filter", "provider_list")


@dataclass(frozen=True)
class SegmentView:
    id: str
    display_name: str
    description: str
    kind: SegmentKind
    filter: filters.Node | None
    contact_count: int
    built_in: bool
    created_at: datetime
    updated_at: datetime
    evaluated_at: datetime | None
    provider_list: lists.ListLink | None


@dataclass(frozen=True)
class NewSegment:
    segment_id: str  # "" to generate one
    display_name: str
    description: str
    kind: SegmentKind | None
    filter: filters.Node | None
    # The provider list to keep its email audience in: None for none, "" to
    # find or create one named after it.
    provider_list: str | None = None


@dataclass(frozen=True)
class SegmentPage:
    segments: list[SegmentView]
    next_page_token: str


@dataclass(frozen=True)
class MemberPage:
    contacts: list[ContactView]
    next_page_token: str


@dataclass(frozen=True)
class Preview:
    contact_count: int
    sample: list[ContactView]


def _check_list_id(v: Violations, list_id: str | None) -> None:
    if list_id is not None and not lists.valid_list_id(list_id):
        v.add(
            "segment.provider_list.list_id",
            "INVALID_LIST_ID",
            "1 to 64 letters, digits, - or _; empty to find or create a list",
        )


def _check_texts(v: Violations, prefix: str, display_name: str, description: str) -> None:
    if not display_name.strip() or len(display_name) > MAX_DISPLAY_NAME or "\x00" in display_name:
        v.add(f"{prefix}display_name", "REQUIRED", f"1 to {MAX_DISPLAY_NAME} characters, no NUL")
    if len(description) > MAX_DESCRIPTION or "\x00" in description:
        v.add(f"{prefix}description", "TOO_LONG", f"at most {MAX_DESCRIPTION} characters, no NUL")


async def create_segment(db: Database, new: NewSegment, *, now: datetime) -> SegmentView:
    v = Violations()
    if new.segment_id and not valid_segment_id(new.segment_id):
        v.add("segment_id", "INVALID_ID", "[a-z][a-z0-9-]{0,62}")
    _check_texts(v, "segment.", new.display_name, new.description)
    if new.kind is None:
        v.add("segment.kind", "REQUIRED", "KIND_DYNAMIC or KIND_MANUAL")
    elif new.kind is SegmentKind.DYNAMIC and new.filter is None:
        v.add("segment.filter", "REQUIRED", "a dynamic segment needs a filter")
    elif new.kind is SegmentKind.MANUAL and new.filter is not None:
        v.add("segment.filter", "NOT_ALLOWED", "a manual segment has no filter")
    _check_list_id(v, new.provider_list)
    v.raise_if_any()
    segment_id = new.segment_id or f"segment-{uuid.uuid4().hex[:16]}"
    async with db.transaction() as session:
        await _refuse_taken(session, segment_id, new.display_name)
        row = Segment(
            id=segment_id,
            display_name=new.display_name,
            description=new.description,
            kind=new.kind,
            built_in=False,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        if new.filter is not None:
            await _set_filter(session, row, new.filter, now)
        if new.provider_list is not None:
            await membership.hold_for_whole_evaluation(session, counts_events=False)
            await _link(session, row, segment_name(row.id), new.provider_list, now)
        await session.flush()
        return await _view(session, row)


async def _refuse_taken(session: AsyncSession, segment_id: str, display_name: str) -> None:
    if await session.get(Segment, segment_id) is not None:
        raise AlreadyExistsError(field="segment_id", description=f"{segment_id} is taken")
    await _refuse_display_name(session, display_name, None)


async def _refuse_display_name(session: AsyncSession, name: str, other_than: str | None) -> None:
    query = select(Segment.id).where(Segment.display_name == name)
    if other_than is not None:
        query = query.where(Segment.id != other_than)
    if await session.scalar(query) is not None:
        raise AlreadyExistsError(
            field="segment.display_name", description=f"a segment is named {name!r} already"
        )


async def _set_filter(
    session: AsyncSession, row: Segment, node: filters.Node, now: datetime
) -> None:
    """Store `node` as the segment's filter (its references checked) and
    evaluate its members at once."""
    references = filters.referenced_segments(node)
    await _check_references(session, row.id, references)
    row.filter = filters.to_json(node)
    row.relative = filters.relative(node)
    row.has_events = filters.has_events(node)
    row.event_types = sorted(filters.event_types(node))
    row.depends_on = sorted(references)
    row.evaluated_at = now
    await session.flush()
    await membership.hold_for_whole_evaluation(session, counts_events=row.has_events)
    await membership.evaluate(session, row.id, node, now)
    # Segments whose filters test membership of this one follow it.
    dependents = await membership.refresh_dependents(session, row.id, now)
    await lists.sync(session, now, segment_ids=[row.id, *dependents])


async def _check_references(
    session: AsyncSession, segment_id: str, references: set[str], field: str = "segment.filter"
) -> None:
    """Every segment named exists, and none is this one or refers back to it."""
    v = Violations()
    known = {s.id: s for s in await session.scalars(select(Segment))}
    for missing in sorted(references - set(known)):
        v.add(field, "UNKNOWN_SEGMENT", f"{segment_name(missing)} does not exist")
    if segment_id in _reachable(known, references):
        v.add(field, "SEGMENT_CYCLE", f"{segment_name(segment_id)} would refer to itself")
    v.raise_if_any()


def _reachable(known: dict[str, Segment], start: set[str]) -> set[str]:
    seen: set[str] = set()
    frontier = set(start)
    while frontier:
        seen |= frontier
        frontier = {d for s in frontier if s in known for d in known[s].depends_on} - seen
    return seen


async def _find(session: AsyncSession, v: Violations, segment_id: str | None, name: str) -> Segment:
    v.raise_if_any()
    row = await session.get(Segment, segment_id)
    if row is None:
        raise NotFoundError(resource_type=RESOURCE_TYPE, resource_name=name)
    return row


async def get_segment(db: Database, *, segment_id: str | None, name: str) -> SegmentView:
    async with db.transaction() as session:
        return await _view(session, await _find(session, Violations(), segment_id, name))


async def list_segments(
    db: Database, tokens: PageTokens, *, page_size: int, page_token: str
) -> SegmentPage:
    v = Violations()
    page = tokens.request(v, SEGMENT_PAGES, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    async with db.transaction() as session:
        rows, token = await read_page(
            session, tokens, SEGMENT_PAGES, page, select(Segment), (Segment.created_at, Segment.id)
        )
        return SegmentPage(await _views(session, rows), token)


@dataclass(frozen=True)
class SegmentChanges:
    """The fields an update names (`paths`), with their new values."""

    paths: tuple[str, ...]
    display_name: str
    description: str
    filter: filters.Node | None
    provider_list: str | None = None  # None: unlink


async def update_segment(
    db: Database, *, segment_id: str | None, name: str, changes: SegmentChanges, now: datetime
) -> SegmentView:
    v = Violations()
    if not changes.paths:
        v.add("update_mask", "REQUIRED", f"name the fields to change: {', '.join(_UPDATABLE)}")
    for path in changes.paths:
        if path not in _UPDATABLE:
            v.add("update_mask", "INVALID_PATH", f"{path!r} cannot change: {', '.join(_UPDATABLE)}")
    display = changes.display_name if "display_name" in changes.paths else "unchanged"
    description = changes.description if "description" in changes.paths else ""
    _check_texts(v, "segment.", display, description)
    if "provider_list" in changes.paths:
        _check_list_id(v, changes.provider_list)
    async with db.transaction() as session:
        row = await _find(session, v, segment_id, name)
        evaluates = "filter" in changes.paths and changes.filter is not None
        if evaluates or "provider_list" in changes.paths:
            # Before the row lock: a drain or relative round sharing the
            # evaluation lock needs the row's key share (a round also writes
            # the row), and would otherwise wait on us. A link
            # holds it too: a drain meanwhile would meet neither its snapshot
            # nor the link.
            node = changes.filter if evaluates else None
            counts_events = node is not None and filters.has_events(node)
            await membership.hold_for_whole_evaluation(session, counts_events=counts_events)
        await session.refresh(row, with_for_update={"key_share": True})
        if "filter" in changes.paths:
            _check_filter_change(row, changes.filter)
        if "display_name" in changes.paths:
            await _refuse_display_name(session, changes.display_name, row.id)
            row.display_name = changes.display_name
        if "description" in changes.paths:
            row.description = changes.description
        if "filter" in changes.paths and changes.filter is not None:
            await _set_filter(session, row, changes.filter, now)
        if "provider_list" in changes.paths:
            await _change_list(session, row, name, changes.provider_list, now)
        row.updated_at = now
        await session.flush()
        return await _view(session, row)


async def _change_list(
    session: AsyncSession, row: Segment, name: str, list_id: str | None, now: datetime
) -> None:
    if list_id is None:
        await lists.unlink(session, row)
        return
    if row.id == NEWSLETTER_SEGMENT:
        raise FailedPreconditionError(
            reason="NEWSLETTER_LIST_IS_CONFIGURED",
            subject=name,
            description="the newsletter's provider list is the dispatcher's newsletter list "
            "(MARKETING_NEWSLETTER_LIST_ID), kept with subscribe and unsubscribe",
        )
    await _link(session, row, name, list_id, now)


async def _link(
    session: AsyncSession, row: Segment, name: str, list_id: str, now: datetime
) -> None:
    try:
        await lists.link(session, row, list_id, now)
    except lists.ListInUse as taken:
        raise FailedPreconditionError(
            reason="LIST_LINKED_ELSEWHERE",
            subject=name,
            description=f"list {taken.list_id} keeps {segment_name(taken.segment_id)}: "
            "each segment needs a list of its own",
        ) from None


def _check_filter_change(row: Segment, node: filters.Node | None) -> None:
    v = Violations()
    if row.kind is SegmentKind.MANUAL:
        v.add("segment.filter", "NOT_ALLOWED", "a manual segment has no filter")
    elif node is None:
        v.add("segment.filter", "REQUIRED", "a dynamic segment needs a filter")
    v.raise_if_any()


async def delete_segment(db: Database, *, segment_id: str | None, name: str) -> None:
    async with db.transaction() as session:
        row = await _find(session, Violations(), segment_id, name)
        if row.built_in:
            raise FailedPreconditionError(
                reason="SEGMENT_BUILT_IN", subject=name, description=f"{name} is built in"
            )
        users = await session.scalars(
            select(Segment.id).where(Segment.depends_on.any(row.id))  # type: ignore[arg-type]
        )
        referring = sorted(users)
        if referring:
            raise FailedPreconditionError(
                reason="SEGMENT_IN_USE",
                subject=name,
                description=f"{name} is in the filter of {', '.join(map(segment_name, referring))}",
            )
        await session.delete(row)


def _member_pages(parent: str) -> Paging:
    return Paging(scope=f"{parent}/contacts", key=(KeyKind.UUID,))


async def list_members(
    db: Database,
    tokens: PageTokens,
    *,
    segment_id: str | None,
    parent: str,
    page_size: int,
    page_token: str,
    violations: Violations | None = None,
) -> MemberPage:
    v = violations or Violations()
    paging = _member_pages(parent)
    page = tokens.request(v, paging, page_size=page_size, page_token=page_token)
    async with db.snapshot() as session:
        row = await _find(session, v, segment_id, parent)
        query = (
            select(Contact)
            .join(SegmentMembership, SegmentMembership.contact_id == Contact.id)
            .where(SegmentMembership.segment == row.id)
        )
        rows, token = await read_page(session, tokens, paging, page, query, (Contact.id,))
        return MemberPage(await contact_views(session, rows), token)


async def change_members(
    db: Database,
    *,
    segment_id: str | None,
    name: str,
    contact_names: list[str],
    join: bool,
    now: datetime,
    violations: Violations | None = None,
) -> int:
    """Add (`join`) or remove contacts of a manual segment; how many changed.
    Every contact must exist: NOT_FOUND names the first that does not."""
    v = violations or Violations()
    if not 1 <= len(contact_names) <= MAX_MEMBERS_PER_CALL:
        v.add("contacts", "INVALID_COUNT", f"1 to {MAX_MEMBERS_PER_CALL} contacts")
    ids = [parse_contact_name(v, f"contacts[{i}]", n) for i, n in enumerate(contact_names)]
    async with db.transaction() as session:
        row = await _find(session, v, segment_id, name)
        if row.kind is not SegmentKind.MANUAL:
            raise FailedPreconditionError(
                reason="SEGMENT_DYNAMIC",
                subject=name,
                description=f"{name} is dynamic: its filter decides its members",
            )
        wanted = list(dict.fromkeys(i for i in ids if i is not None))
        rows = await session.scalars(select(Contact).where(Contact.id.in_(wanted)))
        found = {contact.id: contact for contact in rows}
        for index, contact_id in enumerate(ids):
            if contact_id not in found:
                raise NotFoundError(resource_type="contact", resource_name=contact_names[index])
        if row.id == NEWSLETTER_SEGMENT:
            named = {i: contact_names[n] for n, i in reversed(list(enumerate(ids))) if i}
            people = [(named[i], found[i]) for i in wanted]
            changed = await _change_newsletter(session, name, people, join, now)
        else:
            changed = await (_join if join else _leave)(session, row.id, wanted, now)
        membership.record_changes(session, row.id, changed, join, now)
        await lists.sync(session, now, segment_ids=[row.id], contact_ids=changed)
        # Dynamic segments may test membership of this one.
        await membership.mark_changed(session, changed, now)
        return len(changed)


async def _change_newsletter(
    session: AsyncSession,
    name: str,
    contacts: list[tuple[str, Contact]],
    join: bool,
    now: datetime,
) -> list[uuid.UUID]:
    """The newsletter's members are its subscribers: joining needs email consent
    on record and reaches the provider's list (consent.unsubscribing.join_newsletter);
    leaving is Unsubscribe, which withdraws the consent and the provider's list
    membership together (a provider list cannot be left alone yet)."""
    if join:
        return await unsubscribing.join_newsletter(session, contacts, now)
    raise FailedPreconditionError(
        reason="NEWSLETTER_LEAVE_IS_UNSUBSCRIBE",
        subject=name,
        description="leaving the newsletter is Unsubscribe: it withdraws email consent and the "
        "provider's list membership together",
    )


async def _join(
    session: AsyncSession, segment_id: str, ids: list[uuid.UUID], now: datetime
) -> list[uuid.UUID]:
    statement = (
        pg_insert(SegmentMembership)
        .values([{"contact_id": i, "segment": segment_id, "added_at": now} for i in ids])
        .on_conflict_do_nothing()
        .returning(SegmentMembership.contact_id)
    )
    return list(await session.scalars(statement))


async def _leave(
    session: AsyncSession, segment_id: str, ids: list[uuid.UUID], now: datetime
) -> list[uuid.UUID]:
    statement = (
        delete(SegmentMembership)
        .where(SegmentMembership.segment == segment_id, SegmentMembership.contact_id.in_(ids))
        .returning(SegmentMembership.contact_id)
    )
    return list(await session.scalars(statement))


async def preview(db: Database, node: filters.Node, *, sample_size: int, now: datetime) -> Preview:
    """How many contacts `node` matches at `now`, and the first of them."""
    v = Violations()
    if not 0 <= sample_size <= MAX_SAMPLE:
        v.add("sample_size", "OUT_OF_RANGE", f"0 to {MAX_SAMPLE}")
    v.raise_if_any()
    size = sample_size or DEFAULT_SAMPLE
    async with db.snapshot() as session:
        await _check_references(session, "", filters.referenced_segments(node), "filter")
        found = (await session.execute(_preview_query(node, size, now))).all()
        count = found[0][0]  # the one row of counts, with no sample when none matched
        rows = [contact for _, contact in found if contact is not None]
        return Preview(int(count or 0), await contact_views(session, rows))


def _preview_query(node: filters.Node, size: int, now: datetime) -> Select[int, Contact]:
    """How many contacts match and the first `size` of them, the filter
    evaluated once: the matching ids are materialized, then counted and the
    sample's rows fetched by id. (As two queries, the sample's ORDER BY id
    LIMIT let the planner walk contacts in id order probing a rescanned event
    aggregate row by row: seconds for ten rows.)"""
    matched = select(Contact.id).where(compile_filter(node, now)).cte("matched")
    matched = matched.prefix_with("MATERIALIZED")
    total = select(func.count().label("total")).select_from(matched).subquery("total")
    first = select(matched.c.id).order_by(matched.c.id).limit(size)
    return (
        select(total.c.total, Contact)
        .select_from(total)
        .outerjoin(Contact, Contact.id.in_(first))
        .order_by(Contact.id)
    )


async def _view(session: AsyncSession, row: Segment) -> SegmentView:
    return (await _views(session, [row]))[0]


async def _views(session: AsyncSession, rows: Sequence[Segment]) -> list[SegmentView]:
    """The segments as the API shows them: every count in one query for all
    of them (a page of segments costs no query per segment)."""
    if not rows:
        return []
    counted = await session.execute(
        select(SegmentMembership.segment, func.count())
        .where(SegmentMembership.segment.in_([row.id for row in rows]))
        .group_by(SegmentMembership.segment)
    )
    counts = {segment_id: int(count) for segment_id, count in counted}
    links = await lists.views(session, rows)
    return [
        SegmentView(
            id=row.id,
            display_name=row.display_name,
            description=row.description,
            kind=row.kind,
            filter=None if row.filter is None else filters.from_json(row.filter),
            contact_count=counts.get(row.id, 0),
            built_in=row.built_in,
            created_at=row.created_at,
            updated_at=row.updated_at,
            evaluated_at=row.evaluated_at,
            provider_list=link,
        )
        for row, link in zip(rows, links, strict=True)
    ]
