"""Consent records: the append-only audit trail, and what each record changes.

Consent is never assumed: a contact's opt-in for a type is the `granted` of its
newest record of that type (by consent time, then by recording order), and
False when there is none.

Every write takes the person's lock first and only then reads the clock and the
current state: a decision made now is stamped no earlier than the newest record
on file, so the newest decision by consent time is also the last one committed,
and opt-ins, newsletter membership, suppression and the outbox payload all follow it.
Newsletter membership and unsubscribing are in `unsubscribing`, withdrawals a
provider reported in `reported`, the state the provider is sent in `snapshots`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime.clock import Clock
from sqlalchemy import ARRAY, Uuid, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.consent.snapshots import read_consent_state
from service.contacts.rules import contact_name, parse_contact_name
from service.deliveries import outbox
from service.errors import AlreadyExistsError, FailedPreconditionError, NotFoundError, Violations
from service.flows import triggers as flow_triggers
from service.metrics import CONSENT_RECORDS
from service.push import tokens as push_tokens
from service.segments import membership
from service.sms import suppression as sms_suppression
from service.storage.database import Database, after_commit
from service.storage.models import Consent, Contact, Suppression
from service.storage.models import ConsentType as ConsentType  # handlers name types by it

_OPT_IN_COLUMNS = {
    ConsentType.EMAIL: "email_opt_in",
    ConsentType.SMS: "sms_opt_in",
    ConsentType.PUSH: "push_opt_in",
}
# SMS consent is for a number: a contact's new phone ends it (not an opt-out: no
# number goes on the SMS suppression list).
PHONE_CHANGED_SOURCE = "phone_changed"


@dataclass(frozen=True)
class ConsentInput:
    type: ConsentType | None  # None: the caller left it unspecified
    granted: bool
    source: str
    ip_address: str = ""
    user_agent: str = ""
    consent_time: datetime | None = None
    phone_number: str = ""  # SMS only: the number (defaults to the contact's)
    wording_version: str = ""  # the consent wording shown; required for an SMS grant


@dataclass(frozen=True)
class ConsentView:
    """One stored consent record as callers see it."""

    id: int
    contact_id: uuid.UUID
    type: ConsentType
    granted: bool
    source: str
    ip_address: str | None
    user_agent: str | None
    consent_time: datetime
    recorded_at: datetime
    phone: str | None = None
    wording_version: str | None = None


# The columns a ConsentView copies from its row.
_VIEW_COLUMNS = tuple(f.name for f in fields(ConsentView))


@dataclass(frozen=True)
class ConsentPage:
    consents: list[ConsentView]
    next_page_token: str


def consent_name(view: ConsentView) -> str:
    return f"{contact_name(view.contact_id)}/consents/{view.id}"


def view_of(row: Consent) -> ConsentView:
    return ConsentView(**{column: getattr(row, column) for column in _VIEW_COLUMNS})


def validate_consent(
    v: Violations, c: ConsentInput, prefix: str, now: datetime, skew: timedelta
) -> None:
    if c.type is None:
        v.add(f"{prefix}type", "REQUIRED", "a consent type is required")
    check.check_required(v, f"{prefix}source", c.source)
    check.check_text(v, f"{prefix}source", c.source, Consent.source)
    check.check_ip(v, f"{prefix}ip_address", c.ip_address)
    check.check_text(v, f"{prefix}ip_address", c.ip_address, Consent.ip_address)
    check.check_text(v, f"{prefix}user_agent", c.user_agent, Consent.user_agent)
    check.check_not_future(v, f"{prefix}consent_time", c.consent_time, now, skew)
    check.check_text(v, f"{prefix}wording_version", c.wording_version, Consent.wording_version)
    if c.phone_number:
        check.check_phone(v, f"{prefix}phone_number", c.phone_number)
        if c.type is not ConsentType.SMS:
            v.add(f"{prefix}phone_number", "NOT_FOR_THIS_TYPE", "a phone number is for SMS consent")
    if c.type is ConsentType.SMS and c.granted and not c.wording_version.strip():
        v.add(
            f"{prefix}wording_version",
            "REQUIRED",
            "an SMS grant needs the version of the consent wording the person was shown",
        )


def _check_sms_number(contact: Contact, c: ConsentInput, parent: str, prefix: str) -> None:
    """SMS consent is for a number: the contact's. A grant needs one on file, and a
    number given must be it (a new number is set with UpsertContact first)."""
    if c.type is not ConsentType.SMS:
        return
    if contact.phone is None and (c.granted or c.phone_number):
        raise FailedPreconditionError(
            reason="CONTACT_HAS_NO_PHONE",
            subject=parent,
            description="SMS consent is for the contact's phone, and it has none: set it first",
        )
    if c.phone_number and c.phone_number != contact.phone:
        v = Violations()
        v.add(
            f"{prefix}phone_number",
            "PHONE_MISMATCH",
            "SMS consent is for the contact's phone; this is another number",
        )
        v.raise_if_any()


async def record_consent(
    db: Database,
    *,
    parent: str,
    consent: ConsentInput,
    request_id: str,
    clock: Clock,
    skew: timedelta,
) -> ConsentView:
    v = Violations()
    contact_id = parse_contact_name(v, "parent", parent)
    validate_consent(v, consent, "consent.", clock(), skew)
    rid = check.check_request_id(v, "request_id", request_id)
    v.raise_if_any()
    async with db.transaction() as session:
        # Lock first, then look for the request id: a retry racing its original
        # waits for it and finds its row, rather than inserting the id again.
        contact = await session.get(Contact, contact_id, with_for_update=True)
        if contact is None:
            raise NotFoundError(resource_type="contact", resource_name=parent)
        if rid is not None and (earlier := await by_request_id(session, rid, contact_id)):
            return view_of(earlier)
        _check_sms_number(contact, consent, parent, "consent.")
        return view_of(await record_locked(session, contact, consent, clock(), rid))


async def record_locked(
    session: AsyncSession,
    contact: Contact,
    consent: ConsentInput,
    now: datetime,
    rid: uuid.UUID | None = None,
) -> Consent:
    """Record a validated consent of a contact whose row the caller has locked,
    with everything it causes: the opt-in flag, segments, the provider's work,
    the channel's lists and devices, flow exits."""
    if consent.consent_time is None:  # a decision made now, not a report of an earlier one
        consent = replace(consent, consent_time=await decision_time(session, contact, now))
    row = await append(session, contact, consent, rid, now)
    await membership.mark_changed(session, [contact.id], now)
    await outbox.enqueue(
        session,
        contact_key=check.email_key(contact.email),
        kind=bus_pb2.KIND_CONSENT_CHANGED,
        payload=bus_pb2.ConsentChanged(state=await read_consent_state(session, contact, [row])),
        now=now,
    )
    if consent.type is ConsentType.EMAIL and not contact.email_opt_in:
        await flow_triggers.on_unsubscribed(session, [contact.id], now)
    elif consent.type is ConsentType.EMAIL:
        await flow_triggers.on_email_consent(session, contact, now)
    return row


async def by_request_id(
    session: AsyncSession, rid: uuid.UUID, contact_id: uuid.UUID | None
) -> Consent | None:
    row = await session.scalar(select(Consent).where(Consent.request_id == rid))
    if row is not None and contact_id is not None and row.contact_id != contact_id:
        raise AlreadyExistsError(
            field="request_id", description="request_id was already used for another contact"
        )
    return row


async def decision_time(session: AsyncSession, contact: Contact, now: datetime) -> datetime:
    return (await decision_times(session, {contact.id: now}))[contact.id]


async def decision_times(
    session: AsyncSession, decided: Mapping[uuid.UUID, datetime]
) -> dict[uuid.UUID, datetime]:
    """When each contact's decision, taken under the person's lock, counts as made:
    when the person decided (now, for a call), but never before the newest record on
    file (another replica's clock may run ahead, and a caller may have given a
    consent time up to the allowed skew in the future). One query for any number."""
    if not decided:
        return {}
    rows = await session.execute(
        select(Consent.contact_id, func.max(Consent.consent_time))
        .where(Consent.contact_id == any_(ids(decided)))
        .group_by(Consent.contact_id)
    )
    newest = {contact_id: time for contact_id, time in rows}
    return {contact_id: max(at, newest.get(contact_id, at)) for contact_id, at in decided.items()}


def ids(contact_ids: Collection[uuid.UUID]) -> Any:
    """Contact ids bound as one array (an IN list of many values costs more to
    compile than the query takes to run)."""
    return bindparam(None, list(contact_ids), ARRAY(Uuid))


async def append(
    session: AsyncSession,
    contact: Contact,
    c: ConsentInput,
    rid: uuid.UUID | None,
    now: datetime,
) -> Consent:
    return (await append_all(session, [(contact, c)], now, rid))[0]


async def append_all(
    session: AsyncSession,
    records: Sequence[tuple[Contact, ConsentInput]],
    now: datetime,
    rid: uuid.UUID | None = None,
) -> list[Consent]:
    """Append validated records (at most one per contact and type), with what each
    changes: the opt-in flag and the channel's lists and devices. The rows are
    inserted by one statement and the flags read by one, however many."""
    rows = [_consent_row(contact, c, rid, now) for contact, c in records]
    if not rows:
        return []
    session.add_all(rows)
    await session.flush()
    for row in rows:
        after_commit(session, CONSENT_RECORDS.labels(row.type.value, str(row.granted).lower()).inc)
    await _refresh_opt_ins(
        session, [(contact, row.type) for (contact, _), row in zip(records, rows, strict=True)]
    )
    for (contact, _), row in zip(records, rows, strict=True):
        contact.updated_at = now
        await _channel_effects(session, contact, row, now)
    return rows


def _consent_row(
    contact: Contact, c: ConsentInput, rid: uuid.UUID | None, now: datetime
) -> Consent:
    assert c.type is not None
    return Consent(
        contact_id=contact.id,
        type=c.type,
        granted=c.granted,
        source=c.source.strip(),
        ip_address=c.ip_address or None,
        user_agent=c.user_agent or None,
        consent_time=c.consent_time or now,
        recorded_at=now,
        request_id=rid,
        phone=(c.phone_number or contact.phone) if c.type is ConsentType.SMS else None,
        wording_version=c.wording_version.strip() or None,
    )


async def lapse_sms_consent(
    session: AsyncSession, contact: Contact, old_phone: str, now: datetime
) -> None:
    """The contact's phone changed while it had SMS consent: that consent was for the
    old number and ends (recorded, the provider told); neither number is suppressed."""
    lapsed = ConsentInput(ConsentType.SMS, False, PHONE_CHANGED_SOURCE, phone_number=old_phone)
    await record_locked(session, contact, lapsed, now)


async def _channel_effects(
    session: AsyncSession, contact: Contact, row: Consent, now: datetime
) -> None:
    """What the newest decision for a channel does beyond its flag: an SMS opt-out
    puts the number on the SMS suppression list and an explicit grant takes it
    off (Property 23); push withdrawn deletes the person's devices (Property 25).
    A late record older than the newest decision changes nothing here."""
    if row.type is ConsentType.SMS and row.phone is not None:
        if row.granted and contact.sms_opt_in:
            await sms_suppression.lift(session, row.phone, row.consent_time)
        elif not row.granted and not contact.sms_opt_in and row.source != PHONE_CHANGED_SOURCE:
            await sms_suppression.suppress(session, row.phone, row.source, now)
    elif row.type is ConsentType.PUSH and not row.granted and not contact.push_opt_in:
        await push_tokens.delete_all(session, contact, now)


async def _refresh_opt_ins(
    session: AsyncSession, changed: Sequence[tuple[Contact, ConsentType]]
) -> None:
    """Re-derive the denormalised flags of these contacts and types from the newest
    records: a late-arriving older record must not override a newer decision."""
    flagged = [(contact, type_) for contact, type_ in changed if type_ in _OPT_IN_COLUMNS]
    if not flagged:
        return
    newest = await newest_decisions(session, {contact.id for contact, _ in flagged})
    for contact, type_ in flagged:
        setattr(contact, _OPT_IN_COLUMNS[type_], newest[contact.id][type_.value])


async def effective_consent(session: AsyncSession, contact_id: uuid.UUID) -> dict[str, bool]:
    """Every consent type mapped to its current state (False without a record)."""
    return (await newest_decisions(session, {contact_id}))[contact_id]


async def newest_decisions(
    session: AsyncSession, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, bool]]:
    """Each contact's consent types mapped to the `granted` of their newest record
    (False without one), in one query."""
    if not contact_ids:
        return {}
    rows = await session.execute(
        select(Consent.contact_id, Consent.type, Consent.granted)
        .where(Consent.contact_id == any_(ids(contact_ids)))
        .order_by(Consent.contact_id, Consent.type, Consent.consent_time.desc(), Consent.id.desc())
        .ext(distinct_on(Consent.contact_id, Consent.type))
    )
    states = {contact_id: {t.value: False for t in ConsentType} for contact_id in contact_ids}
    for contact_id, type_, granted in rows:
        states[contact_id][type_.value] = granted
    return states


_CONSENT_ORDER = (Consent.consent_time, Consent.id)


def _consent_pages(parent: str) -> Paging:
    """Newest first; a token is good only for the contact it was listed for."""
    return Paging(scope=f"consents:{parent}", key=(KeyKind.TIME, KeyKind.ID))


async def list_consents(
    db: Database, tokens: PageTokens, *, parent: str, page_size: int, page_token: str
) -> ConsentPage:
    v = Violations()
    contact_id = parse_contact_name(v, "parent", parent)
    paging = _consent_pages(parent)
    page = tokens.request(v, paging, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    query = select(Consent).where(Consent.contact_id == contact_id)
    async with db.transaction() as session:
        if await session.get(Contact, contact_id) is None:
            raise NotFoundError(resource_type="contact", resource_name=parent)
        rows, token = await read_page(
            session, tokens, paging, page, query, _CONSENT_ORDER, descending=True
        )
    return ConsentPage([view_of(row) for row in rows], token)


async def may_send_marketing(db: Database, *, email: str, channel: ConsentType) -> bool:
    """The gate every marketing send passes: the address is not suppressed and
    the person's newest consent for the channel is a grant; for SMS, a number
    off the SMS suppression list; for push, a device."""
    column = _OPT_IN_COLUMNS.get(channel)
    if column is None:
        raise ValueError(f"{channel} is not a messaging channel")
    email = check.normalize_email(email)
    async with db.transaction() as session:
        if await session.get(Suppression, check.email_key(email)) is not None:
            return False
        contact = await session.scalar(select(Contact).where(Contact.email == email))
        if contact is None or not getattr(contact, column):
            return False
        if channel is ConsentType.SMS:
            return contact.phone is not None and not await sms_suppression.suppressed(
                session, contact.phone
            )
        if channel is ConsentType.PUSH:
            return bool(await session.scalar(select(push_tokens.has_token_sql(contact.id))))
        return True
