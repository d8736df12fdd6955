"""The consent state sent to the provider: a person's whole state (opt-ins,
newsletter membership, suppression), never only what changed, so the dispatcher
brings the provider to it whatever came before. A change, a full sync and
ReconcileContact all build it here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime.timestamps import to_timestamp
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from service.contacts.rules import ContactView, contact_views
from service.storage.models import Consent, ConsentType, Contact


async def read_consent_state(
    session: AsyncSession, contact: Contact, records: list[Consent]
) -> bus_pb2.ConsentState:
    """The person's whole consent state after this change, not only the new
    records: the dispatcher brings the provider to this state, so applying
    the newest message for a person is always right, whatever came before."""
    view = (await contact_views(session, [contact]))[0]
    return consent_state(view, records)


def consent_state(view: ContactView, records: Sequence[Consent] = ()) -> bus_pb2.ConsentState:
    """A contact's whole consent state as the bus carries it, with the
    records a change wrote (none for a snapshot, as a full sync sends)."""
    message = bus_pb2.ConsentState(
        records=[
            bus_pb2.ConsentRecord(
                type=_BUS_CONSENT_TYPES[r.type],
                granted=r.granted,
                source=r.source,
                consent_time=to_timestamp(r.consent_time),
            )
            for r in records
        ],
    )
    return fill_consent_snapshot(
        message, view, suppressed=view.suppressed, newsletter_member=view.newsletter_member
    )


def fill_consent_snapshot(
    message: bus_pb2.ConsentState,
    person: ContactView | Row[Any],
    *,
    suppressed: bool,
    newsletter_member: bool,
) -> bus_pb2.ConsentState:
    """The state `consent_state` carries, without records, written into
    `message`: a full sync fills the one inside its chunk (no copy). `person`
    may be a plain row of the contact's columns, told what is kept beside it."""
    message.contact_id = str(person.id)
    message.email = person.email
    if person.phone is not None:
        message.phone = person.phone
    opt_in = message.opt_in
    opt_in.email = person.email_opt_in
    opt_in.sms = person.sms_opt_in
    opt_in.push = person.push_opt_in
    message.newsletter_member = newsletter_member
    message.suppressed = suppressed
    return message


async def current_consent_state(session: AsyncSession, contact: Contact) -> bus_pb2.ConsentState:
    """The person's whole consent state as a ConsentChanged carries it, without records:
    what the dispatcher brings the provider to (ReconcileContact compares and repairs by it)."""
    return await read_consent_state(session, contact, [])


# Each consent type as the bus names it: the value of the same name.
_BUS_CONSENT_TYPES: dict[ConsentType, Any] = {
    type_: bus_pb2.ConsentType.Value(f"CONSENT_TYPE_{type_.value}") for type_ in ConsentType
}
