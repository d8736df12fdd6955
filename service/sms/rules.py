"""SMS opt-out of a number (OptOutSms): every contact with that number has SMS
consent withdrawn and the number goes on the SMS suppression list, in one
transaction, whether or not any contact has the number (Property 23). The
provider is sent each contact's new consent state (its SMS unsubscribe)."""

from __future__ import annotations

from dataclasses import dataclass

from marketing_runtime.clock import Clock
from sqlalchemy import select

from service.common import validation as check
from service.consent.rules import ConsentInput, ConsentType, record_locked
from service.contacts.rules import contact_name
from service.errors import Violations
from service.sms import suppression
from service.storage.database import Database
from service.storage.models import Consent, Contact


@dataclass(frozen=True)
class OptOut:
    changed: bool
    contacts: list[str]  # the names of the contacts with the number


async def opt_out(db: Database, *, phone_number: str, source: str, clock: Clock) -> OptOut:
    v = Violations()
    check.check_required(v, "phone_number", phone_number)
    if phone_number:
        check.check_phone(v, "phone_number", phone_number)
    check.check_required(v, "source", source)
    check.check_text(v, "source", source, Consent.source)
    v.raise_if_any()
    source = source.strip()
    async with db.transaction() as session:
        holders = list(
            await session.scalars(
                select(Contact)
                .where(Contact.phone == phone_number)
                .order_by(Contact.id)
                .with_for_update()
            )
        )
        now = clock()
        withdrawn = False
        for contact in holders:
            if contact.sms_opt_in:
                withdrawal = ConsentInput(ConsentType.SMS, False, source)
                await record_locked(session, contact, withdrawal, now)
                withdrawn = True
        suppressed = await suppression.suppress(session, phone_number, source, now)
        return OptOut(withdrawn or suppressed, [contact_name(c.id) for c in holders])
