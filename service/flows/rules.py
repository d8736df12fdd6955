"""Flow use cases behind the RPCs: reading and changing flows, listing the
decisions made about contacts, and exiting an enrolment by hand."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.errors import FailedPreconditionError, NotFoundError, Violations
from service.flows import timers
from service.flows.definitions import (
    UPDATABLE,
    FlowDefinition,
    State,
    TriggerKind,
    from_row,
    row_values,
)
from service.flows.enrolments import exit_where
from service.flows.people import contact_emails, lock_people
from service.flows.views import EnrolmentView
from service.storage.database import Database
from service.storage.models import Enrolment, Flow, Segment, Timer

# What UpdateFlow makes of a flow: the request's fields (those the mask names)
# read onto it, each bad one added to the violations (service.flows.messages).
FlowChange = Callable[[Violations, FlowDefinition], FlowDefinition]
FLOW_PAGES = Paging(scope="flows", key=(KeyKind.NAME,))
MAX_REASON = 200


@dataclass(frozen=True)
class FlowPage:
    flows: list[FlowDefinition]
    next_page_token: str


@dataclass(frozen=True)
class EnrolmentPage:
    enrolments: list[EnrolmentView]
    next_page_token: str


async def get_flow(db: Database, *, flow_id: str, name: str) -> FlowDefinition:
    async with db.transaction() as session:
        row = await _find(session, flow_id, name)
        return (await _definitions(session, [row]))[0]


async def list_flows(
    db: Database, tokens: PageTokens, *, page_size: int, page_token: str
) -> FlowPage:
    v = Violations()
    page = tokens.request(v, FLOW_PAGES, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    async with db.transaction() as session:
        rows, token = await read_page(session, tokens, FLOW_PAGES, page, select(Flow), (Flow.id,))
        return FlowPage(await _definitions(session, rows), token)


async def update_flow(
    db: Database,
    *,
    flow_id: str,
    name: str,
    change: FlowChange,
    paths: tuple[str, ...],
    now: datetime,
) -> FlowDefinition:
    v = Violations()
    if not paths:
        v.add("update_mask", "REQUIRED", f"name the fields to change: {', '.join(UPDATABLE)}")
    for path in paths:
        if path not in UPDATABLE:
            v.add("update_mask", "INVALID_PATH", f"{path!r} cannot change: {', '.join(UPDATABLE)}")
    v.raise_if_any()
    async with db.transaction() as session:
        row = await _find(session, flow_id, name, lock=True)
        before = from_row(row)
        after = change(v, before)
        await _check_segments_exist(session, v, after)
        v.raise_if_any()
        for column, value in row_values(after).items():
            setattr(row, column, value)
        row.updated_at = now
        await session.flush()
        await _retime_win_back(session, before, after)
        return (await _definitions(session, [row]))[0]


async def _check_segments_exist(session: AsyncSession, v: Violations, flow: FlowDefinition) -> None:
    named: dict[str, list[str | None]] = {
        "flow.trigger.segment_entered": [flow.trigger.segment_id],
        "flow.exit_conditions": list(flow.exits.segments),
    }
    wanted = {s for ids in named.values() for s in ids if s}
    if not wanted:
        return
    found = set(await session.scalars(select(Segment.id).where(Segment.id.in_(wanted))))
    for path, ids in named.items():
        for segment_id in ids:
            if segment_id and segment_id not in found:
                v.add(path, "SEGMENT_NOT_FOUND", f"segments/{segment_id} does not exist")


async def _retime_win_back(
    session: AsyncSession, before: FlowDefinition, after: FlowDefinition
) -> None:
    """Keep the flow's no-purchase timers in line with its trigger: moved to
    a new delay, set for every buyer when it becomes a win-back flow, and
    dropped when it stops being one."""
    was = before.trigger.no_purchase_for if before.trigger.kind is TriggerKind.NO_PURCHASE else None
    now_is = (
        after.trigger.no_purchase_for if after.trigger.kind is TriggerKind.NO_PURCHASE else None
    )
    prefix = f"{after.id}:"
    if was == now_is:
        return
    if now_is is None:
        await session.execute(
            delete(Timer).where(Timer.kind == timers.NO_PURCHASE, Timer.key.startswith(prefix))
        )
    elif was is not None:
        await timers.move_by_base(session, timers.NO_PURCHASE, prefix, int(now_is.total_seconds()))
    else:
        await session.execute(
            text(
                "INSERT INTO marketing_timer (kind, key, contact_id, due_at, base_at, payload)"
                " SELECT :kind, :prefix || id, id,"
                " last_purchase_time + :seconds * INTERVAL '1 second', last_purchase_time, '{}'"
                " FROM marketing_contact WHERE last_purchase_time IS NOT NULL"
                " ON CONFLICT (kind, key) DO NOTHING"
            ),
            {"kind": timers.NO_PURCHASE, "prefix": prefix, "seconds": int(now_is.total_seconds())},
        )


async def list_enrolments(
    db: Database,
    tokens: PageTokens,
    *,
    parent: str,
    flow_id: str,
    contact_id: uuid.UUID | None,
    states: Sequence[State],
    page_size: int,
    page_token: str,
    violations: Violations,
) -> EnrolmentPage:
    """Decisions newest first, of one flow (or every flow, "-"), optionally of
    one contact and in some states."""
    scope = f"{parent}/enrolments?contact={contact_id or ''}&states={','.join(sorted(states))}"
    paging = Paging(scope=scope, key=(KeyKind.TIME, KeyKind.UUID))
    request = tokens.request(violations, paging, page_size=page_size, page_token=page_token)
    violations.raise_if_any()
    async with db.transaction() as session:
        if flow_id != "-":
            await _find(session, flow_id, parent)
        query = select(Enrolment)
        if flow_id != "-":
            query = query.where(Enrolment.flow_id == flow_id)
        if contact_id is not None:
            query = query.where(Enrolment.contact_id == contact_id)
        if states:
            query = query.where(Enrolment.state.in_([s.value for s in states]))
        rows, token = await read_page(
            session,
            tokens,
            paging,
            request,
            query,
            (Enrolment.created_at, Enrolment.id),
            descending=True,
        )
        return EnrolmentPage(await _enrolment_views(session, rows), token)


async def exit_enrolment(
    db: Database,
    *,
    flow_id: str,
    enrolment_id: uuid.UUID,
    name: str,
    reason: str,
    now: datetime,
) -> EnrolmentView:
    v = Violations()
    if len(reason) > MAX_REASON:
        v.add("reason", "TOO_LONG", f"at most {MAX_REASON} characters")
    v.raise_if_any()
    async with db.transaction() as session:
        row = await session.get(Enrolment, enrolment_id)
        if row is None or row.flow_id != flow_id:
            raise NotFoundError(resource_type="enrolment", resource_name=name)
        # The person's decisions first, then the row (the order every decision
        # takes them in), and its state as it is under both.
        await lock_people(session, {row.contact_id})
        await session.refresh(row, with_for_update=True)
        if row.state != State.ACTIVE:
            raise FailedPreconditionError(
                reason="ENROLMENT_NOT_ACTIVE",
                subject=name,
                description=f"the enrolment is {row.state.lower()}, not running",
            )
        why = f"manual: {reason.strip()}" if reason.strip() else "manual"
        await exit_where(session, Enrolment.id == enrolment_id, why, now)
        await session.refresh(row)
        return (await _enrolment_views(session, [row]))[0]


async def _find(session: AsyncSession, flow_id: str, name: str, *, lock: bool = False) -> Flow:
    row = await session.get(Flow, flow_id, with_for_update=lock)
    if row is None:
        raise NotFoundError(resource_type="flow", resource_name=name)
    return row


async def _definitions(session: AsyncSession, rows: Sequence[Flow]) -> list[FlowDefinition]:
    """The flows with their running enrolments counted (the partial unique
    index on running enrolments answers the count)."""
    ids = [r.id for r in rows]
    counts = dict(
        (
            await session.execute(
                select(Enrolment.flow_id, func.count())
                .where(Enrolment.flow_id.in_(ids), Enrolment.state == State.ACTIVE)
                .group_by(Enrolment.flow_id)
            )
        ).all()
    )
    return [from_row(r, counts.get(r.id, 0)) for r in rows]


async def _enrolment_views(session: AsyncSession, rows: Sequence[Enrolment]) -> list[EnrolmentView]:
    emails = await contact_emails(session, {r.contact_id for r in rows})
    return [
        EnrolmentView(
            id=r.id,
            flow_id=r.flow_id,
            contact_id=r.contact_id,
            email=emails.get(r.contact_id, ""),
            state=State(r.state),
            entry_key=r.entry_key,
            cause_kind=TriggerKind(r.cause_kind),
            cause_ref=r.cause_ref,
            cause_time=r.cause_time,
            created_at=r.created_at,
            ended_at=r.ended_at,
            exit_reason=r.exit_reason,
            rejection_reason=r.rejection_reason,
        )
        for r in rows
    ]
