"""Segment joins and leaves some flow names, taken from marketing_flow_signal
(written with the membership change, by a trigger: migration 0009) and acted
on in the transaction that takes them: a join enrols in the flows it
triggers, a leave ends the enrolments of the flows it exits. Taking deletes
(SKIP LOCKED, oldest first), so each signal is acted on once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.flows.definitions import FlowDefinition, TriggerKind
from service.flows.enrolments import Candidate, Cause, enrol
from service.flows.people import lock_people, people
from service.flows.triggers import exit_after, load_flows
from service.storage.fresh_plans import execute_afresh
from service.storage.models import FlowSignal


@dataclass(frozen=True, slots=True)
class Signal:
    id: int
    segment_id: str
    contact_id: uuid.UUID
    joined: bool
    changed_at: datetime


async def take(session: AsyncSession, limit: int) -> list[Signal]:
    """Up to `limit` signals, oldest first, deleted in this transaction."""
    oldest = (
        select(FlowSignal.id).order_by(FlowSignal.id).limit(limit).with_for_update(skip_locked=True)
    )
    rows = await execute_afresh(
        session,
        delete(FlowSignal)
        .where(FlowSignal.id.in_(oldest.scalar_subquery()))
        .returning(
            FlowSignal.id,
            FlowSignal.segment_id,
            FlowSignal.contact_id,
            FlowSignal.joined,
            FlowSignal.changed_at,
        ),
    )
    return sorted((Signal(*row) for row in rows), key=lambda s: s.id)


async def act(session: AsyncSession, signals: Sequence[Signal], now: datetime) -> None:
    """Joins before leaves: a contact who joined and left within one batch
    is enrolled, then exited, as it happened."""
    if not signals:
        return
    await lock_people(session, {s.contact_id for s in signals})
    flows = await load_flows(session)
    await _enrol_joiners(session, flows, [s for s in signals if s.joined], now)
    await _exit_leavers(session, flows, [s for s in signals if not s.joined], now)


async def _enrol_joiners(
    session: AsyncSession, flows: Sequence[FlowDefinition], joins: Sequence[Signal], now: datetime
) -> None:
    found = await people(session, {s.contact_id for s in joins})
    for flow in flows:
        if flow.trigger.kind is not TriggerKind.SEGMENT_ENTERED:
            continue
        candidates = [
            Candidate(
                s.contact_id,
                found[s.contact_id].email,
                found[s.contact_id].suppressed,
                found[s.contact_id].consented,
                f"segment:{s.id}",
                Cause(TriggerKind.SEGMENT_ENTERED, s.segment_id, s.changed_at),
            )
            for s in joins
            if s.segment_id == flow.trigger.segment_id and s.contact_id in found
        ]
        await enrol(session, flow, candidates, now)


async def _exit_leavers(
    session: AsyncSession, flows: Sequence[FlowDefinition], leaves: Sequence[Signal], now: datetime
) -> None:
    happened = [(s.segment_id, s.contact_id, s.changed_at) for s in leaves]
    await exit_after(
        session,
        happened,
        lambda segment_id: [f.id for f in flows if segment_id in f.exits.segments],
        "segment_left",
        now,
    )
