"""Helpers of the flow tests: a database of the module's own, events logged
as the event-log writer logs them, and what the decisions left behind."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import orjson
from marketing_runtime.timestamps import epoch_micros
from sqlalchemy import or_, select

from service.common.validation import email_key
from service.consent.rules import ConsentInput, record_consent
from service.contacts.rules import ContactFields, upsert_contact
from service.events.event_log import LogEvent, insert_log_rows
from service.storage.database import Database
from service.storage.models import ConsentType, Enrolment, Outbox, Timer


async def log_event(
    db: Database,
    email: str,
    metric: str,
    body: dict[str, Any],
    at: datetime,
    *,
    event_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """An event taken in over the bus (the event-log writer's path); its id."""
    event_id = event_id or f"ev-{uuid.uuid4().hex}"
    event = LogEvent(
        event_id, email_key(email), email, metric, epoch_micros(at), orjson.dumps(body), None
    )
    async with db.transaction() as session:
        await insert_log_rows(session, [event], now or at, report_new=False)
    return event_id


async def register(
    db: Database, email: str, at: datetime, *, consent: bool = True, **fields: Any
) -> uuid.UUID:
    """A sign-up: the contact, then (with `consent`) its email marketing
    consent a moment later, as a storefront records them."""
    view, _ = await upsert_contact(
        db,
        ContactFields(email=email, first_name="Ada", **fields),
        now=at,
        skew=timedelta(minutes=5),
    )
    if consent:
        await grant_email(db, view.id, at)
    return view.id


async def grant_email(db: Database, contact_id: uuid.UUID, at: datetime) -> None:
    await record_consent(
        db,
        parent=f"contacts/{contact_id}",
        consent=ConsentInput(ConsentType.EMAIL, True, "signup_form"),
        request_id="",
        clock=lambda: at,
        skew=timedelta(minutes=5),
    )


async def welcomes(db: Database, email: str) -> list[Enrolment]:
    """The person's welcome decisions but the refusal a sign-up records before
    its consent lands (`no_consent`, under a trigger of its own)."""
    return [e for e in await enrolments(db, email, "welcome") if e.rejection_reason != "no_consent"]


async def enrolments(db: Database, email: str, flow_id: str | None = None) -> list[Enrolment]:
    from service.storage.models import Contact

    async with db.transaction() as session:
        query = (
            select(Enrolment)
            .join(Contact, Contact.id == Enrolment.contact_id)
            .where(Contact.email == email)
            .order_by(Enrolment.created_at, Enrolment.id)
        )
        if flow_id is not None:
            query = query.where(Enrolment.flow_id == flow_id)
        return list(await session.scalars(query))


async def timers_of(db: Database, contact_id: uuid.UUID, kind: str) -> list[Timer]:
    async with db.transaction() as session:
        return list(
            await session.scalars(
                select(Timer).where(Timer.contact_id == contact_id, Timer.kind == kind)
            )
        )


# A row of many people's beginnings (KIND_ENROLMENTS_BEGUN): read as one row
# per beginning of the person's, where it stands among their other rows.
BEGUN = "enrolments.begun"


async def outbox_kinds(db: Database, email: str) -> list[str]:
    return [row.kind for row in await _person_rows(db, email)]


async def outbox_rows(db: Database, email: str, kind: str) -> list[Any]:
    """The person's outbox rows of `kind`, in order, with their payload messages
    (a beginning among many: its own EnrolmentChanged)."""
    return [row for row in await _person_rows(db, email) if row.kind == kind]


async def _person_rows(db: Database, email: str) -> list[_Row]:
    from service.deliveries import outbox

    async with db.transaction() as session:
        rows = await session.execute(
            select(Outbox.kind, Outbox.payload)
            .where(or_(Outbox.contact_key == email_key(email), Outbox.kind == BEGUN))
            .order_by(Outbox.seq)
        )
        found: list[_Row] = []
        for kind, data in rows:
            payload = outbox.payload(kind, data)
            if kind != BEGUN:
                found.append(_Row(kind, payload))
            else:
                found += [_Row(kind, b) for b in payload.begun if b.email == email]
        return found


class _Row:
    def __init__(self, kind: str, payload: Any) -> None:
        self.kind = kind
        self.payload = payload


Scenario = Callable[[Database], Awaitable[None]]


@contextmanager
def scenarios_on(url: str) -> Iterator[Callable[[Scenario], None]]:
    """Runs scenarios against one database, on one event loop and one
    connection pool for every example of a Hypothesis test."""
    loop = asyncio.new_event_loop()
    db = Database(url)

    def run(scenario: Scenario) -> None:
        loop.run_until_complete(scenario(db))

    try:
        yield run
    finally:
        loop.run_until_complete(db.close())
        loop.close()
