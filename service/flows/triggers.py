"""What sets flow decisions off, each in the transaction of the fact itself:
events as they are logged (triggers, exits, cart and win-back timers),
registrations and purchase times saved with a contact, and unsubscribes.
Every step is one or a few statements per batch, whatever its size, and a
batch without a type any flow or timer cares about costs one small query."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from marketing_runtime.timestamps import EPOCH
from sqlalchemy import ARRAY, Uuid, any_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.flows import timers
from service.flows.definitions import FlowDefinition, TriggerKind, from_row
from service.flows.enrolments import Candidate, Cause, enrol, exit_where
from service.flows.people import at_times, lock_people, people
from service.segments.sql import compile_filter
from service.storage.models import Contact, Enrolment, Flow, Suppression
from service.waitlists import states as waitlist_states

ADDED_TO_CART = "added_to_cart"
PLACED_ORDER = "placed_order"
CART_ABANDONED = "cart_abandoned"
# A cart without activity for this long is abandoned (the seed's hour: P9, P17).
CART_INACTIVITY = timedelta(hours=1)
UNSUBSCRIBED = "unsubscribed"


class LoggedEvent(Protocol):
    """An event as the event log takes it in (service.events.event_log.LogEvent)."""

    @property
    def event_id(self) -> str: ...
    @property
    def contact_key(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def occurred_us(self) -> int: ...
    @property
    def payload_json(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Event:
    event_id: str
    metric: str
    occurred_at: datetime
    body: dict[str, Any]
    contact_id: uuid.UUID
    email: str
    suppressed: bool
    consented: bool


async def load_flows(session: AsyncSession) -> list[FlowDefinition]:
    return [from_row(row) for row in await session.scalars(select(Flow).order_by(Flow.id))]


async def on_events(
    session: AsyncSession,
    events: Sequence[LoggedEvent],
    flows: Sequence[FlowDefinition],
    now: datetime,
) -> None:
    """Decide what these events, new to the log and of types_wanted(flows),
    start, end and arm."""
    if not events:
        return
    known = await _people(session, events)
    await lock_people(session, {e.contact_id for e in known})
    happened = sorted(known, key=lambda e: e.occurred_at)
    await _arm_carts(session, [e for e in happened if e.metric == ADDED_TO_CART])
    purchases = [e for e in happened if e.metric == PLACED_ORDER]
    await timers.cancel_for_contacts(
        session, timers.CART, [(e.contact_id, e.occurred_at) for e in purchases]
    )
    await _arm_win_backs(session, flows, [(e.contact_id, e.occurred_at) for e in purchases])
    await waitlist_states.remove_purchased(session, _bought(purchases), now)
    for flow in flows:  # triggers before exits: an exit after the trigger ends it
        if flow.trigger.kind is TriggerKind.EVENT:
            await _enrol_on_events(session, flow, happened, now)
    await _exit_on_events(session, flows, happened, now)


def _bought(purchases: Sequence[_Event]) -> list[tuple[uuid.UUID, str]]:
    """(buyer, product) of every order line."""
    bought = []
    for e in purchases:
        order = e.body.get("order")
        lines = order.get("lines") if isinstance(order, dict) else None
        for line in lines if isinstance(lines, list) else []:
            if isinstance(line, dict) and line.get("product_id"):
                bought.append((e.contact_id, str(line["product_id"])))
    return bought


def types_wanted(flows: Iterable[FlowDefinition]) -> set[str]:
    """The event types some flow or timer acts on."""
    wanted = {ADDED_TO_CART, PLACED_ORDER}
    for flow in flows:
        if flow.trigger.kind is TriggerKind.EVENT and flow.trigger.event_type:
            wanted.add(flow.trigger.event_type)
        wanted.update(flow.exits.events)
    return wanted


async def _people(session: AsyncSession, events: Sequence[LoggedEvent]) -> list[_Event]:
    """The events of known contacts, with each contact's id and suppression
    (an event of an address we hold no contact for enrols no one)."""
    emails = {e.email for e in events}
    contacts = {
        email: (contact_id, opted_in)
        for email, contact_id, opted_in in await session.execute(
            select(Contact.email, Contact.id, Contact.email_opt_in).where(Contact.email.in_(emails))
        )
    }
    keys = {e.contact_key for e in events if e.email in contacts}
    suppressed = set(
        await session.scalars(
            select(Suppression.email_sha256).where(Suppression.email_sha256.in_(keys))
        )
    )
    return [
        _Event(
            e.event_id,
            e.metric,
            EPOCH + timedelta(microseconds=e.occurred_us),
            _body(e.payload_json),
            contacts[e.email][0],
            e.email,
            e.contact_key in suppressed,
            contacts[e.email][1],
        )
        for e in events
        if e.email in contacts
    ]


def _body(payload_json: bytes) -> dict[str, Any]:
    body = orjson.loads(payload_json) if payload_json else {}
    return body if isinstance(body, dict) else {}


async def _arm_carts(session: AsyncSession, added: Sequence[_Event]) -> None:
    """Each cart's inactivity timer, an hour after its newest activity."""
    armed = []
    for e in added:
        found = e.body.get("cart")
        cart: dict[str, Any] = found if isinstance(found, dict) else {}
        # The cart's own id may be as long as the caller likes: the key holds
        # a digest of it, so it always fits (and so does the event id made
        # from it when the cart is abandoned).
        cart_id = hashlib.sha256(str(cart.get("cart_id") or "").encode()).hexdigest()[:32]
        armed.append(
            timers.Armed(
                timers.CART,
                f"{e.contact_id}:{cart_id}",
                e.contact_id,
                e.occurred_at + CART_INACTIVITY,
                e.occurred_at,
                {"cart": cart, "item": e.body.get("item") or {}},
            )
        )
    await timers.arm(session, armed, latest_wins=True)


async def _arm_win_backs(
    session: AsyncSession,
    flows: Sequence[FlowDefinition],
    purchases: Sequence[tuple[uuid.UUID, datetime]],
) -> None:
    """Re-arm every win-back flow's timer of each buyer, from the purchase."""
    armed = [
        timers.Armed(
            timers.NO_PURCHASE,
            f"{flow.id}:{contact_id}",
            contact_id,
            bought_at + flow.trigger.no_purchase_for,
            bought_at,
            {},
        )
        for flow in flows
        if flow.trigger.kind is TriggerKind.NO_PURCHASE and flow.trigger.no_purchase_for
        for contact_id, bought_at in purchases
    ]
    await timers.arm(session, armed, latest_wins=True)


async def _enrol_on_events(
    session: AsyncSession, flow: FlowDefinition, events: Sequence[_Event], now: datetime
) -> None:
    mine = [e for e in events if e.metric == flow.trigger.event_type]
    if flow.trigger.contact_filter is not None and mine:
        matching = await _matching(session, flow, {e.contact_id for e in mine}, now)
        mine = [e for e in mine if e.contact_id in matching]
    candidates = [
        Candidate(
            e.contact_id,
            e.email,
            e.suppressed,
            e.consented,
            f"event:{e.event_id}",
            Cause(TriggerKind.EVENT, e.event_id, _set_off_at(e)),
            e.body,
        )
        for e in mine
    ]
    await enrol(session, flow, candidates, now)


def _set_off_at(e: _Event) -> datetime:
    """When an event sets its enrolment off: when it happened, except that an
    abandoned cart's recovery counts from the cart's last activity. A purchase
    made after that activity then ends the recovery even when it is logged
    after the hour was up (the purchase's event may lag behind the timer)."""
    cart = e.body.get("cart")
    last = cart.get("last_activity_time") if isinstance(cart, dict) else None
    if e.metric == CART_ABANDONED and isinstance(last, str):
        try:
            return min(datetime.fromisoformat(last.replace("Z", "+00:00")), e.occurred_at)
        except ValueError:
            pass
    return e.occurred_at


async def _matching(
    session: AsyncSession, flow: FlowDefinition, contact_ids: set[uuid.UUID], now: datetime
) -> set[uuid.UUID]:
    assert flow.trigger.contact_filter is not None
    found = await session.scalars(
        select(Contact.id).where(
            Contact.id.in_(contact_ids),
            compile_filter(flow.trigger.contact_filter, now, few=True),
        )
    )
    return set(found)


async def _exit_on_events(
    session: AsyncSession, flows: Sequence[FlowDefinition], events: Sequence[_Event], now: datetime
) -> None:
    """End the enrolments an exit event of their flow happened after."""
    happened = [(e.metric, e.contact_id, e.occurred_at) for e in events]
    await exit_after(session, happened, lambda metric: _exiting(flows, metric), "event", now)


def _exiting(flows: Sequence[FlowDefinition], metric: str) -> list[str]:
    return [f.id for f in flows if metric in f.exits.events]


async def exit_after(
    session: AsyncSession,
    happened: Sequence[tuple[str, uuid.UUID, datetime]],
    exiting: Callable[[str], list[str]],
    kind: str,
    now: datetime,
) -> None:
    """For each (what, contact, when) that happened — an exit event, a
    segment left — end the contact's enrolments in the flows `exiting(what)`
    names that were set off no later than `when`, for `<kind>:<what>`."""
    by_what: defaultdict[str, list[tuple[uuid.UUID, datetime]]] = defaultdict(list)
    for what, contact_id, at in happened:
        by_what[what].append((contact_id, at))
    for what, pairs in sorted(by_what.items()):
        flow_ids = exiting(what)
        if flow_ids:
            after = after_cause(pairs)
            await exit_where(
                session, Enrolment.flow_id.in_(flow_ids) & after, f"{kind}:{what}", now
            )


def after_cause(pairs: Sequence[tuple[uuid.UUID, datetime]]) -> Any:
    """Enrolments of these contacts set off no later than each one's time."""
    rows = at_times(sorted(set(pairs)), "exits")
    return (
        select(1)
        .select_from(rows)
        .where(
            rows.c.contact_id == Enrolment.contact_id,
            (Enrolment.cause_time.is_(None)) | (Enrolment.cause_time <= rows.c.at),
        )
        .exists()
    )


async def on_contact_saved(
    session: AsyncSession,
    contact: Contact,
    *,
    registered: bool,
    purchase_time_changed: bool,
    suppressed: bool,
    now: datetime,
) -> None:
    """A contact created or updated: a registration enrols them in the
    registration flows (once: the trigger is the contact), and a new last
    purchase time re-arms the win-back timers."""
    if not (registered or purchase_time_changed):
        return
    flows = await load_flows(session)
    await lock_people(session, {contact.id})
    if purchase_time_changed and contact.last_purchase_time is not None:
        await _arm_win_backs(session, flows, [(contact.id, contact.last_purchase_time)])
    if registered:
        await _registered(session, flows, contact, suppressed, now)


async def _registered(
    session: AsyncSession,
    flows: Sequence[FlowDefinition],
    contact: Contact,
    suppressed: bool,
    now: datetime,
) -> None:
    """Enrol a registration in the registration flows. Without email consent
    yet (a sign-up records it a moment later) the refusal is recorded under a
    trigger of its own, so the consent, when it comes, still decides the
    registration (on_email_consent)."""
    consented = contact.email_opt_in
    ref = f"registration:{contact.id}" if consented else f"registration:{contact.id}:no-consent"
    candidate = Candidate(
        contact.id,
        contact.email,
        suppressed,
        consented,
        ref,
        Cause(TriggerKind.REGISTRATION, "", contact.registration_time or now),
    )
    for flow in flows:
        if flow.trigger.kind is TriggerKind.REGISTRATION:
            await enrol(session, flow, [candidate], now)


async def on_email_consent(session: AsyncSession, contact: Contact, now: datetime) -> None:
    """Email marketing granted: a registration still within a registration
    flow's run (its `completes_after`) that could not enter for want of
    consent enters now; one that entered already decides nothing again."""
    registered_at = contact.registration_time
    if registered_at is None or not contact.email_opt_in:
        return
    await lock_people(session, {contact.id})
    suppressed = (await people(session, {contact.id}))[contact.id].suppressed
    for flow in await load_flows(session):
        if (
            flow.trigger.kind is TriggerKind.REGISTRATION
            and now - registered_at <= flow.completes_after
        ):
            candidate = Candidate(
                contact.id,
                contact.email,
                suppressed,
                True,
                f"registration:{contact.id}",
                Cause(TriggerKind.REGISTRATION, "", registered_at),
            )
            await enrol(session, flow, [candidate], now)


async def on_unsubscribed(
    session: AsyncSession, contact_ids: Collection[uuid.UUID], now: datetime
) -> None:
    """The contacts withdrew email consent or unsubscribed: they leave every
    flow that exits on it (one statement for any number of them)."""
    if not contact_ids:
        return
    await lock_people(session, set(contact_ids))
    leaving = select(Flow.id).where(Flow.exit_on_unsubscribe)
    people = bindparam(None, sorted(set(contact_ids)), ARRAY(Uuid))
    await exit_where(
        session,
        (Enrolment.contact_id == any_(people)) & Enrolment.flow_id.in_(leaving),
        UNSUBSCRIBED,
        now,
    )
