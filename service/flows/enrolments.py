"""Enrolling contacts in a flow and taking them out, in the transaction of
what caused it. Every attempt is recorded (refused ones as REJECTED, with
why); every enrolment that begins or ends tells the provider through the
outbox, on a subject of its own (in order per enrolment, never behind the
person's consent changes): the enrolments a decision began as one
KIND_ENROLMENTS_BEGUN per thousand (a restock's waitlist is a hundred
messages, not 100,000), each end as a KIND_ENROLMENT_CHANGED."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from marketing.bus.v1 import bus_pb2
from marketing_runtime.kinds import Kind
from marketing_runtime.timestamps import epoch_micros, to_timestamp
from sqlalchemy import ColumnElement, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.validation import email_key
from service.deliveries import outbox
from service.flows import timers
from service.flows.definitions import FlowDefinition, ProviderFlow, State, TriggerKind
from service.flows.entry import ALREADY_ENROLLED, Prior, entry_key, refusal
from service.metrics import FLOW_DECISIONS, FLOW_EXITS
from service.storage.bulk import copy_new_rows, insert_rows
from service.storage.database import after_commit
from service.storage.models import Contact, Enrolment, EventLog, Flow

ENROLLED = "enrolled"
# A KIND_ENROLMENTS_BEGUN row's beginnings: one Klaviyo bulk job's worth at
# most, and half the NATS server's default max_payload (1 MiB) at most (a
# cart's context may be large): a restock's thousand (about 450 bytes each)
# fit one message, so each message is one full bulk job however the dispatcher
# cuts its fetches.
BEGUN_PER_MESSAGE = 1000
BEGUN_MAX_BYTES = 512 * 1024
# Enrolments begun together from which they are copied rather than inserted: a
# COPY goes in a savepoint of its own and takes four round trips (the savepoint,
# the copy's start and its data, the release) where an INSERT takes one, and a
# transaction of more than 64 subtransactions (an event batch enrolling its
# people one at a time) would slow every snapshot PostgreSQL takes meanwhile.
COPIED_FROM = 100
# A batch's triggers already decided, and its people's earlier enrolments:
# each looked up by its own key (LATERAL: one index probe per trigger or
# person), on the index that leads with it (the trigger's, the person's). The
# flow is only a filter there, written so that no index can take it
# (`flow_id || ''`): a flow PostgreSQL's statistics do not know yet (the first
# large restock, a new flow) is estimated at one row, and the planner then
# walked every enrolment of the flow by `ix_marketing_enrolment_flow_created`
# for each trigger, so a 100,000-person restock slowed down as it went
# (migration 0018). As plain `= ANY(...)` filters it did the same.
_DECIDED = text(
    """
    SELECT r.ref FROM unnest(CAST(:refs AS varchar[])) AS r(ref)
    CROSS JOIN LATERAL (
        SELECT 1 FROM marketing_enrolment e
        WHERE e.trigger_ref = r.ref AND e.flow_id || '' = :flow LIMIT 1
    ) AS hit
    """
)
_PRIORS = text(
    """
    SELECT e.contact_id, e.entry_key, e.state, e.created_at
    FROM unnest(CAST(:ids AS uuid[])) AS p(id)
    CROSS JOIN LATERAL (
        SELECT contact_id, entry_key, state, created_at FROM marketing_enrolment
        WHERE contact_id = p.id AND flow_id || '' = :flow AND state <> 'REJECTED'
        OFFSET 0
    ) AS e
    """
)


@dataclass(frozen=True, slots=True)
class Cause:
    """What set a decision off: its kind, reference (event id, segment id)
    and time (the event's, the last purchase's, the registration's)."""

    kind: TriggerKind
    ref: str = ""
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A contact a trigger fired for."""

    contact_id: uuid.UUID
    email: str
    suppressed: bool
    consented: bool  # email marketing granted
    trigger_ref: str  # one decision per flow and trigger_ref
    cause: Cause
    body: dict[str, Any] | None = None  # the trigger event's body: key and context


class Addressed(NamedTuple):
    """A beginning's message: whom it goes to, and the context the provider's message
    needs (the trigger event's body). Not kept with the enrolment: its cause holds
    it (the event in the event log, the subscription's restock; migration 0023)."""

    email: str
    context: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Decision:
    enrolment_id: uuid.UUID
    contact_id: uuid.UUID
    trigger_ref: str
    enrolled: bool
    reason: str | None  # why refused


async def enrol(
    session: AsyncSession, flow: FlowDefinition, candidates: Sequence[Candidate], now: datetime
) -> list[Decision]:
    """Decide each candidate's entry into `flow` and record it. A trigger
    already decided for this flow (an event seen again) decides nothing."""
    fresh = await _undecided(session, flow.id, candidates)
    if not fresh:
        return []
    priors = await _priors(session, flow.id, {c.contact_id for c in fresh})
    ids = _ascending_ids(len(fresh))
    rows = [
        _decide(flow, c, priors[c.contact_id], id_, now) for c, id_ in zip(fresh, ids, strict=True)
    ]
    addressed = {row["id"]: Addressed(c.email, c.body) for row, c in zip(rows, fresh, strict=True)}
    accepted = [r for r in rows if r["state"] == State.ACTIVE]
    if accepted:
        await _insert_accepted(session, accepted)
    refused = [r for r in rows if r["state"] == State.REJECTED]
    if refused:
        await session.execute(insert_rows(Enrolment, refused).on_conflict_do_nothing())
    begun = [r for r in rows if r["state"] == State.ACTIVE]
    await outbox.enqueue_many(session, begun_rows(flow, begun, addressed, now), now=now)
    if begun:
        await timers.arm(session, [_completion(flow, now)], latest_wins=False)
    if flow.exits.events and begun:
        await _exit_if_left_already(session, flow, [r["id"] for r in begun], now)
    decisions = [
        Decision(
            r["id"],
            r["contact_id"],
            r["trigger_ref"],
            r["state"] == State.ACTIVE,
            r["rejection_reason"],
        )
        for r in rows
    ]
    after_commit(session, lambda: _count(flow.id, decisions))
    return decisions


async def _insert_accepted(session: AsyncSession, accepted: list[dict[str, Any]]) -> None:
    """The enrolments begun: many by COPY (README, figure 10). Should any of them
    conflict (a concurrent decision enrolled that person under that key, or
    decided that trigger, first), none is copied, and each is inserted unless it
    conflicts: those are refused as already enrolled."""
    if len(accepted) >= COPIED_FROM and await copy_new_rows(session, Enrolment, accepted):
        return
    inserted = set(
        await session.scalars(
            insert_rows(Enrolment, accepted).on_conflict_do_nothing().returning(Enrolment.id)
        )
    )
    for row in accepted:
        if row["id"] not in inserted:
            row.update(state=State.REJECTED, rejection_reason=ALREADY_ENROLLED)


def _completion(flow: FlowDefinition, begun_at: datetime) -> timers.Armed:
    """One timer completing every enrolment of `flow` begun at `begun_at` (a
    decision's, and any other's of the same instant) once the flow's time is up."""
    return timers.Armed(
        timers.ENROLMENTS_END,
        f"{flow.id}@{epoch_micros(begun_at)}",
        None,
        begun_at + flow.completes_after,
        begun_at,
        {"flow_id": flow.id, "begun_at": epoch_micros(begun_at)},
    )


async def _exit_if_left_already(
    session: AsyncSession, flow: FlowDefinition, enrolment_ids: list[uuid.UUID], now: datetime
) -> None:
    """End at once the enrolments whose person already did what ends them
    after what set them off: a purchase logged before a late trigger (the
    abandonment of a cart bought from meanwhile, taken in by another batch)."""
    for metric in flow.exits.events:
        done_since = (
            select(EventLog.id)
            .where(
                EventLog.contact_id == Enrolment.contact_id,
                EventLog.type == metric,
                EventLog.occurred_at > Enrolment.cause_time,
            )
            .exists()
        )
        condition = Enrolment.id.in_(enrolment_ids) & done_since
        await exit_where(session, condition, f"event:{metric}", now)


async def _undecided(
    session: AsyncSession, flow_id: str, candidates: Sequence[Candidate]
) -> list[Candidate]:
    refs = sorted({c.trigger_ref for c in candidates})
    decided = set(await session.scalars(_DECIDED, {"flow": flow_id, "refs": refs}))
    fresh: dict[str, Candidate] = {}
    for c in candidates:
        if c.trigger_ref not in decided:
            fresh.setdefault(c.trigger_ref, c)
    # In contact order: two transactions enrolling the same people take their
    # index entries in the same order, and never wait on each other in a cycle.
    # (UUID.int: UUIDs compared as objects cost a Python call each.)
    return sorted(fresh.values(), key=lambda c: (c.contact_id.int, c.trigger_ref))


async def _priors(
    session: AsyncSession, flow_id: str, contact_ids: set[uuid.UUID]
) -> defaultdict[uuid.UUID, list[Prior]]:
    rows = await session.execute(_PRIORS, {"flow": flow_id, "ids": list(contact_ids)})
    priors: defaultdict[uuid.UUID, list[Prior]] = defaultdict(list)
    for contact_id, key, state, created_at in rows:
        priors[contact_id].append(Prior(key, State(state), created_at))
    return priors


def _ascending_ids(count: int) -> list[uuid.UUID]:
    """Random ids (UUID4) in ascending order. A batch's rows share their creation
    time, so in the (created_at, id) indexes they now go one after another rather
    than all over the batch's stretch, and into the primary key in key order
    (measured alone: 49 against 42 µs of PostgreSQL an enrolment, README figure 10)."""
    return sorted((uuid.uuid4() for _ in range(count)), key=_as_int)


def _as_int(u: uuid.UUID) -> int:
    return u.int


def _decide(
    flow: FlowDefinition, c: Candidate, priors: list[Prior], id_: uuid.UUID, now: datetime
) -> dict[str, Any]:
    key = entry_key(flow.entry, c.body)
    reason = refusal(
        flow.entry,
        key,
        priors,
        now,
        live=flow.live,
        suppressed=c.suppressed,
        # A back-in-stock notice is a message the person asked for; every
        # other flow is marketing.
        consented=c.consented or flow.trigger.kind is TriggerKind.BACK_IN_STOCK,
    )
    if reason is None:  # the next candidate of this contact in the batch sees it
        priors.append(Prior(key, State.ACTIVE, now))
    return {
        "id": id_,
        "flow_id": flow.id,
        "contact_id": c.contact_id,
        "state": State.ACTIVE if reason is None else State.REJECTED,
        "entry_key": key,
        "trigger_ref": c.trigger_ref,
        "cause_kind": c.cause.kind.value,
        "cause_ref": c.cause.ref,
        "cause_time": c.cause.time,
        "created_at": now,
        "rejection_reason": reason,
    }


def begun_rows(
    flow: FlowDefinition,
    begun: list[dict[str, Any]],
    addressed: dict[uuid.UUID, Addressed],
    now: datetime,
) -> list[tuple[str, Kind, bytes]]:
    """The beginnings (enrolment rows, with what each one's message says by
    enrolment id) as KIND_ENROLMENTS_BEGUN outbox rows of up to BEGUN_PER_MESSAGE (and
    BEGUN_MAX_BYTES) each, in the order decided. Each beginning is made in its
    message from the fields they all share (a thousand times over, the per-item
    constructor was a large part of a restock's decisions).

    A message the byte cap cuts short holds a share of BEGUN_PER_MESSAGE that
    divides it (500, 250, 200, ...; `_even_share`), the rest going on: the
    dispatcher fills each provider call (a thousand events) from consecutive
    messages and a part of its batch from whole ones, so messages of 563 left a
    call part-full at the end of most parts (four calls more for a 100,000-person
    waitlist). It is cut so once: should the rest still not fit (a large
    beginning after many small ones), only the newest beginning moves on."""
    shared = _shared(flow.id, flow.provider, now)
    messages: list[bus_pb2.EnrolmentsBegun] = []
    people: list[set[str]] = []  # each message's emails
    sizes: list[int] = []  # of the last message's beginnings (each with its tag and length)
    size = 0  # their sum
    for r in begun:
        if not messages or len(messages[-1].begun) >= BEGUN_PER_MESSAGE:
            messages.append(bus_pb2.EnrolmentsBegun())
            people.append(set())
            sizes, size = [], 0
        email, context = addressed[r["id"]]
        change = messages[-1].begun.add()
        change.CopyFrom(shared)
        _of_enrolment(change, r["id"], email, r["entry_key"], context)
        people[-1].add(email)
        sizes.append(change.ByteSize() + 4)
        size += sizes[-1]
        if len(sizes) > 1 and size > BEGUN_MAX_BYTES:
            keep = _even_share(len(sizes) - 1)
            while len(sizes) > 1 and size > BEGUN_MAX_BYTES:  # the rest may not fit either
                rest = bus_pb2.EnrolmentsBegun()
                rest.begun.extend(messages[-1].begun[keep:])
                del messages[-1].begun[keep:]
                messages.append(rest)
                # A cut is rare: both messages' people are counted again.
                people[-1:] = [{c.email for c in m.begun} for m in messages[-2:]]
                sizes = sizes[keep:]
                size = sum(sizes)
                keep = len(sizes) - 1
    return [
        (_key_of(emails_of), bus_pb2.KIND_ENROLMENTS_BEGUN, m.SerializeToString())
        for m, emails_of in zip(messages, people, strict=True)
    ]


def _even_share(fitting: int) -> int:
    """The most beginnings, at most `fitting`, that divide BEGUN_PER_MESSAGE (1 at least)."""
    return max(d for d in range(1, fitting + 1) if BEGUN_PER_MESSAGE % d == 0)


def _key_of(people: set[str]) -> str:
    """A row of one person's beginnings (a registration's welcome) is theirs, as any
    row of theirs: erasure finds it by their key. Many people's is no one's."""
    return email_key(next(iter(people))) if len(people) == 1 else outbox.MANY_PEOPLE


def _ended(message: bus_pb2.EnrolmentChanged) -> tuple[str, Kind, bytes]:
    """An end's outbox row: its person's, a KIND_ENROLMENT_CHANGED of its own."""
    return email_key(message.email), bus_pb2.KIND_ENROLMENT_CHANGED, message.SerializeToString()


def _message(
    flow_id: str,
    enrolment_id: uuid.UUID,
    email: str,
    key: str,
    context: dict[str, Any] | None,
    provider: ProviderFlow,
    now: datetime,
    *,
    exit_reason: str = "",
    others_active: bool = False,
) -> bus_pb2.EnrolmentChanged:
    change = _shared(flow_id, provider, now, exit_reason=exit_reason)
    _of_enrolment(change, enrolment_id, email, key, context)
    change.others_active = others_active
    return change


def _shared(
    flow_id: str, provider: ProviderFlow, now: datetime, *, exit_reason: str = ""
) -> bus_pb2.EnrolmentChanged:
    """What every change of the flow made at `now` (for `exit_reason`) says."""
    return bus_pb2.EnrolmentChanged(
        flow_id=flow_id,
        active=not exit_reason,
        exit_reason=exit_reason,
        start_metric=provider.klaviyo_start_metric,
        exit_metric=provider.klaviyo_exit_metric,
        property=provider.klaviyo_property,
        automation_id=provider.activecampaign_automation_id,
        change_time=to_timestamp(now),
    )


def _of_enrolment(
    change: bus_pb2.EnrolmentChanged,
    enrolment_id: uuid.UUID,
    email: str,
    key: str,
    context: dict[str, Any] | None,
) -> None:
    """The change made one enrolment's."""
    change.enrolment_id = str(enrolment_id)
    change.email = email
    change.entry_key = key
    change.context_json = orjson.dumps(context or {})


def _count(flow_id: str, decisions: list[Decision]) -> None:
    outcomes = Counter(ENROLLED if d.enrolled else d.reason or "" for d in decisions)
    for outcome, count in outcomes.items():
        FLOW_DECISIONS.labels(flow_id, outcome).inc(count)


async def exit_where(
    session: AsyncSession, condition: ColumnElement[bool], reason: str, now: datetime
) -> list[uuid.UUID]:
    """End every running enrolment `condition` (over Enrolment) picks, for
    `reason`; tell the provider, and cancel their completion timers. Returns
    the enrolments ended."""
    ended = (
        update(Enrolment)
        .where(
            Enrolment.state == State.ACTIVE,
            Enrolment.flow_id == Flow.id,
            Enrolment.contact_id == Contact.id,
            condition,
        )
        .values(state=State.EXITED, ended_at=now, exit_reason=reason)
        .returning(
            Enrolment.id,
            Enrolment.flow_id,
            Enrolment.contact_id,
            Enrolment.entry_key,
            Contact.email,
            Flow.klaviyo_start_metric,
            Flow.klaviyo_exit_metric,
            Flow.klaviyo_property,
            Flow.activecampaign_automation_id,
        )
        .execution_options(synchronize_session=False)
    )
    rows = (await session.execute(ended)).all()
    if not rows:
        return []
    still_running = await _running(session, {(r[1], r[2]) for r in rows})
    changes = [
        _ended(
            _message(
                flow_id,
                id_,
                email,
                key,
                None,
                ProviderFlow(*provider),
                now,
                exit_reason=reason,
                others_active=(flow_id, contact_id) in still_running,
            )
        )
        for id_, flow_id, contact_id, key, email, *provider in sorted(
            rows, key=lambda r: (r[4], r[0])
        )
    ]
    await outbox.enqueue_many(session, changes, now=now)
    await timers.cancel(session, timers.ENROLMENT_END, [str(r[0]) for r in rows])
    kind = reason.split(":", 1)[0]
    flows = [r[1] for r in rows]
    after_commit(session, lambda: _count_exits(flows, kind))
    return [r[0] for r in rows]


async def _running(
    session: AsyncSession, pairs: set[tuple[str, uuid.UUID]]
) -> set[tuple[str, uuid.UUID]]:
    """Which of these (flow, contact) pairs still have a running enrolment
    (another cart's recovery): the provider's per-person state of the flow
    must then stay."""
    rows = await session.execute(
        select(Enrolment.flow_id, Enrolment.contact_id).where(
            Enrolment.state == State.ACTIVE,
            tuple_(Enrolment.flow_id, Enrolment.contact_id).in_(sorted(pairs)),
        )
    )
    return {(flow_id, contact_id) for flow_id, contact_id in rows}


def _count_exits(flows: list[str], kind: str) -> None:
    for flow_id in flows:
        FLOW_EXITS.labels(flow_id, kind).inc()


async def complete(session: AsyncSession, enrolment_ids: Sequence[uuid.UUID], now: datetime) -> int:
    """Mark these enrolments COMPLETED, those still running; how many. The
    provider's flow runs its own course: nothing is sent."""
    if not enrolment_ids:
        return 0
    return await _complete_where(session, Enrolment.id.in_(enrolment_ids), now)


async def complete_begun(
    session: AsyncSession, completions: Sequence[tuple[str, datetime]], now: datetime
) -> int:
    """Mark COMPLETED the enrolments still running of each (flow, beginning)
    (an ENROLMENTS_END timer's); how many."""
    done = 0
    for flow_id, begun_at in sorted(set(completions)):
        began = (Enrolment.flow_id == flow_id) & (Enrolment.created_at == begun_at)
        done += await _complete_where(session, began, now)
    return done


async def _complete_where(session: AsyncSession, which: ColumnElement[bool], now: datetime) -> int:
    result = await session.execute(
        update(Enrolment)
        .where(which, Enrolment.state == State.ACTIVE)
        .values(state=State.COMPLETED, ended_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
