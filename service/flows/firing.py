"""What a timer does when it falls due, in the transaction that takes it:
- a cart's: the cart is abandoned: a `cart_abandoned` event is recorded (the
  event log, and the outbox for the provider, like any event), which the
  flows triggered by it take in at once (cart recovery, P9, P17);
- a win-back flow's: the contact, whose last purchase is that old, is
  enrolled (P20);
- a running enrolment's end: it is COMPLETED."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from google.protobuf import json_format
from marketing.bus.v1 import bus_pb2
from marketing_runtime.kinds import Kind
from marketing_runtime.timestamps import epoch_micros, from_epoch_micros, to_timestamp
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.validation import email_key
from service.deliveries import outbox
from service.events.bus_body import log_json
from service.events.event_log import LogEvent, insert_log_rows
from service.flows import timers
from service.flows.definitions import TriggerKind
from service.flows.enrolments import Candidate, Cause, complete, complete_begun, enrol
from service.flows.people import contact_emails, lock_people, people
from service.flows.triggers import CART_ABANDONED, load_flows
from service.metrics import EVENTS_ACCEPTED, TIMER_LATENESS, TIMERS_FIRED
from service.storage.database import after_commit


async def fire(session: AsyncSession, fired: Sequence[timers.Fired], now: datetime) -> None:
    """Act on timers just taken (oldest due first)."""
    await lock_people(session, {f.contact_id for f in fired if f.contact_id is not None})
    carts = [f for f in fired if f.kind == timers.CART]
    win_backs = [f for f in fired if f.kind == timers.NO_PURCHASE]
    ends = [f for f in fired if f.kind == timers.ENROLMENT_END]
    ended_together = [
        (f.payload["flow_id"], from_epoch_micros(f.payload["begun_at"]))
        for f in fired
        if f.kind == timers.ENROLMENTS_END
    ]
    await _abandon_carts(session, carts, now)
    await _win_back(session, win_backs, now)
    await complete(session, [uuid.UUID(f.key) for f in ends], now)
    await complete_begun(session, ended_together, now)
    after_commit(session, lambda: _count(fired, now))


def _count(fired: Sequence[timers.Fired], now: datetime) -> None:
    for f in fired:
        TIMERS_FIRED.labels(f.kind).inc()
        TIMER_LATENESS.labels(f.kind).observe(max(0.0, (now - f.due_at).total_seconds()))


async def _abandon_carts(
    session: AsyncSession, carts: Sequence[timers.Fired], now: datetime
) -> None:
    if not carts:
        return
    emails = await contact_emails(session, {f.person for f in carts})
    logged: list[LogEvent] = []
    queued: list[tuple[str, Kind, bytes]] = []
    for f in carts:
        email = emails.get(f.person)
        if email is None:
            continue
        event = _abandoned(f, email)
        key = email_key(email)
        logged.append(
            LogEvent(
                event.event_id,
                key,
                email,
                CART_ABANDONED,
                epoch_micros(f.due_at),
                log_json(event),
                None,
            )
        )
        queued.append((key, bus_pb2.KIND_EVENT_TRACKED, event.SerializeToString()))
    new = await insert_log_rows(session, logged, now)
    await outbox.enqueue_many(
        session, [q for q, e in zip(queued, logged, strict=True) if e.event_id in new], now=now
    )
    after_commit(session, lambda: EVENTS_ACCEPTED.labels(CART_ABANDONED).inc(len(new)))


def _abandoned(f: timers.Fired, email: str) -> bus_pb2.EventTracked:
    """The cart_abandoned event of a cart's timer: at the hour's end, with
    the cart as last seen. Its id names the cart and its last activity, so
    the same abandonment is one event however often it is decided."""
    cart = json_format.ParseDict(
        f.payload.get("cart") or {}, bus_pb2.Cart(), ignore_unknown_fields=True
    )
    if not cart.HasField("last_activity_time"):
        cart.last_activity_time.CopyFrom(to_timestamp(f.base_at))
    event = bus_pb2.EventTracked(
        event_id=f"{CART_ABANDONED}:{f.key}:{epoch_micros(f.base_at)}",  # at most 101 characters
        email=email,
        metric=CART_ABANDONED,
        occur_time=to_timestamp(f.due_at),
    )
    event.cart_abandoned.cart.CopyFrom(cart)
    return event


async def _win_back(session: AsyncSession, due: Sequence[timers.Fired], now: datetime) -> None:
    """Enrol each contact in the win-back flow whose timer fell due."""
    if not due:
        return
    flows = {f.id: f for f in await load_flows(session)}
    found = await people(session, {f.person for f in due})
    by_flow: dict[str, list[Candidate]] = {}
    for f in due:
        flow_id = f.key.split(":", 1)[0]
        flow = flows.get(flow_id)
        person = found.get(f.person)
        if flow is None or flow.trigger.kind is not TriggerKind.NO_PURCHASE or person is None:
            continue  # the flow changed its trigger, or the contact is gone
        by_flow.setdefault(flow_id, []).append(
            Candidate(
                f.person,
                person.email,
                person.suppressed,
                person.consented,
                f"no_purchase:{f.person}:{epoch_micros(f.base_at)}",
                Cause(TriggerKind.NO_PURCHASE, "", f.base_at),
            )
        )
    for flow_id, candidates in sorted(by_flow.items()):
        await enrol(session, flows[flow_id], candidates, now)
