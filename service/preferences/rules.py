"""What a person may do on their preference page, and what each does.

- See their channels (email, SMS, push) and whether they are unsubscribed from
  everything; seeing changes nothing.
- Save: each channel the person changed on the page (from what it showed) and
  turned off is withdrawn; email or SMS turned on is granted (SMS with the consent
  wording the page showed, and only with a phone on file; push is granted only by
  the app, with a device: the page can only turn it off). A channel left as shown
  is left as it is now, whatever happened meanwhile.
  Every record says where (`preference_page`), the visitor's IP and user agent.
- Unsubscribe from all: as the Unsubscribe RPC (every channel, the address
  suppressed), from `preference_page`.
- Subscribe again (when unsubscribed from all): as SubscribeNewsletter.
- One-click (RFC 8058, a mail client's POST): recorded in one statement and
  answered; the one-click worker (or the next consent write on the address,
  first) then withdraws email, leaves the newsletter and suppresses the address,
  from `one_click` (consent.one_click). Until then the page shows it as done.
Each change reaches the provider through the outbox like any other."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from marketing_runtime.clock import Clock
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.consent import one_click as one_click_queue
from service.consent import unsubscribing
from service.consent.rules import ConsentInput, ConsentType, record_locked
from service.contacts.rules import contact_views
from service.errors import Violations
from service.push.tokens import tokens_of
from service.storage.database import Database
from service.storage.models import Consent, Contact

PAGE_SOURCE = "preference_page"


@dataclass(frozen=True)
class Preferences:
    contact_id: uuid.UUID
    email: str
    first_name: str
    has_phone: bool
    devices: int
    email_opt_in: bool
    sms_opt_in: bool
    push_opt_in: bool
    suppressed: bool


@dataclass(frozen=True)
class Wanted:
    """What the person changed each channel to; None: left as the page showed it."""

    email: bool | None
    sms: bool | None
    push: bool | None


@dataclass(frozen=True)
class Visitor:
    """Who is on the page, kept in the consent records a save writes."""

    ip_address: str
    user_agent: str

    def recorded(self) -> Visitor:
        """As a consent record keeps it: an address only when it is one (a proxy may
        pass anything), the user agent cut to the column."""
        v = Violations()
        check.check_ip(v, "ip_address", self.ip_address)
        ip = "" if v else self.ip_address
        return Visitor(ip, self.user_agent[: check.column_length(Consent.user_agent)])


async def read(db: Database, contact_id: uuid.UUID) -> Preferences | None:
    async with db.snapshot() as session:
        contact = await session.get(Contact, contact_id)
        if contact is None:
            return None
        return await _preferences(session, contact)


async def _preferences(session: AsyncSession, contact: Contact) -> Preferences:
    """The page as it stands, a one-click not yet applied shown as done: the person
    was told it is, and every later decision on the address comes after it."""
    view = (await contact_views(session, [contact]))[0]
    devices = len(await tokens_of(session, contact.id))
    clicked = await one_click_queue.is_queued(session, contact.id)
    return Preferences(
        contact.id,
        contact.email,
        contact.first_name or "",
        contact.phone is not None,
        devices,
        contact.email_opt_in and not clicked,
        contact.sms_opt_in,
        contact.push_opt_in,
        view.suppressed or clicked,
    )


async def save(
    db: Database,
    contact_id: uuid.UUID,
    wanted: Wanted,
    visitor: Visitor,
    *,
    sms_wording_version: str,
    clock: Clock,
) -> Preferences | None:
    """Record what changed; the page as it now stands (None: the contact is gone)."""
    async with db.transaction() as session:
        contact = await session.get(Contact, contact_id, with_for_update=True)
        if contact is None:
            return None
        before = await _preferences(session, contact)
        now = clock()
        who = visitor.recorded()
        for type_, on, was, may_grant in (
            (ConsentType.EMAIL, wanted.email, before.email_opt_in, not before.suppressed),
            (ConsentType.SMS, wanted.sms, before.sms_opt_in, before.has_phone),
            (ConsentType.PUSH, wanted.push, before.push_opt_in, False),
        ):
            if on is None or on == was or (on and not may_grant):
                continue
            wording = sms_wording_version if type_ is ConsentType.SMS and on else ""
            record = ConsentInput(
                type_, on, PAGE_SOURCE, who.ip_address, who.user_agent, wording_version=wording
            )
            await record_locked(session, contact, record, now)
        return await _preferences(session, contact)


async def unsubscribe_all(db: Database, email: str, *, clock: Clock) -> bool:
    return await unsubscribing.unsubscribe(
        db, email=email, reason=PAGE_SOURCE, clock=clock, source=PAGE_SOURCE
    )


async def one_click(db: Database, contact_id: uuid.UUID, *, clock: Clock) -> bool:
    """Queue the contact's one-click unsubscribe, durably, in one statement (a repeat
    while it is queued changes nothing); whether the contact exists. Applied within
    the one-click worker's bound (service.workers.one_click_worker), as a decision
    made at this click."""
    async with db.transaction() as session:
        return await one_click_queue.queue(session, contact_id, clock())


async def subscribe_again(db: Database, email: str, visitor: Visitor, *, clock: Clock) -> bool:
    """As SubscribeNewsletter; whether the address may be mailed now (a hard bounce or a
    spam complaint keeps it suppressed: the person opted in, but we cannot mail it)."""
    who = visitor.recorded()
    subscription = unsubscribing.Subscription(email, PAGE_SOURCE, who.ip_address, who.user_agent)
    contact, _ = await unsubscribing.subscribe_newsletter(db, subscription, clock=clock)
    return not contact.suppressed


async def email_of(db: Database, contact_id: uuid.UUID) -> str | None:
    async with db.transaction() as session:
        email: str | None = await session.scalar(
            select(Contact.email).where(Contact.id == contact_id)
        )
        return email
