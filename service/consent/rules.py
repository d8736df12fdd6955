"""Consent: the append-only audit trail, newsletter subscription, unsubscribe.

Consent is never assumed: a contact's opt-in for a type is the `granted` of its
newest record of that type (by consent time, then by recording order), and
False when there is none.

Every write takes the person's lock first and only then reads the clock and the
current state: a decision made now is stamped no earlier than the newest record
on file, so the newest decision by consent time is also the last one committed,
and opt-ins, newsletter membership, suppression and the outbox payload all follow it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime.clock import Clock
from marketing_runtime.timestamps import to_timestamp
from sqlalchemy import Row, delete, func, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.contacts.rules import (
    NEWSLETTER_SEGMENT,
    ContactView,
    contact_name,
    contact_views,
    get_or_create_by_email,
    parse_contact_name,
)
from service.deliveries import outbox
from service.errors import AlreadyExistsError, FailedPreconditionError, NotFoundError, Violations
from service.flows import triggers as flow_triggers
from service.metrics import CONSENT_RECORDS, UNSUBSCRIBES
from service.push import tokens as push_tokens
from service.segments import membership
from service.sms import suppression as sms_suppression
from service.storage.database import Database, after_commit
from service.storage.models import Consent, Contact, SegmentMembership, Suppression
from service.storage.models import ConsentType as ConsentType  # handlers name types by it

# Withdrawn by an unsubscribe: every channel we could reach the person on.
COMMUNICATION_TYPES = (ConsentType.EMAIL, ConsentType.SMS, ConsentType.PUSH, ConsentType.MARKETING)
_OPT_IN_COLUMNS = {
    ConsentType.EMAIL: "email_opt_in",
    ConsentType.SMS: "sms_opt_in",
    ConsentType.PUSH: "push_opt_in",
}
UNSUBSCRIBE_SOURCE = "unsubscribe"
# SMS consent is for a number: a contact's new phone ends it (not an opt-out: no
# number goes on the SMS suppression list).
PHONE_CHANGED_SOURCE = "phone_changed"
SUPPRESSION_REASON_UNSUBSCRIBED = "unsubscribed"
# The first key of the two-key advisory locks that serialise consent writes per
# address (a key space of its own: PostgreSQL keeps it apart from one-key locks).
_ADDRESS_LOCK_SPACE = 0x636F6E73  # "cons"


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


def _validate_consent(
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
    _validate_consent(v, consent, "consent.", clock(), skew)
    rid = check.check_request_id(v, "request_id", request_id)
    v.raise_if_any()
    async with db.transaction() as session:
        # Lock first, then look for the request id: a retry racing its original
        # waits for it and finds its row, rather than inserting the id again.
        contact = await session.get(Contact, contact_id, with_for_update=True)
        if contact is None:
            raise NotFoundError(resource_type="contact", resource_name=parent)
        if rid is not None and (earlier := await _by_request_id(session, rid, contact_id)):
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
        consent = replace(consent, consent_time=await _decision_time(session, contact, now))
    row = await _append(session, contact, consent, rid, now)
    await membership.mark_changed(session, [contact.id], now)
    await outbox.enqueue(
        session,
        contact_key=check.email_key(contact.email),
        kind=bus_pb2.KIND_CONSENT_CHANGED,
        payload=bus_pb2.ConsentChanged(state=await _consent_state(session, contact, [row])),
        now=now,
    )
    if consent.type is ConsentType.EMAIL and not contact.email_opt_in:
        await flow_triggers.on_unsubscribed(session, contact.id, now)
    elif consent.type is ConsentType.EMAIL:
        await flow_triggers.on_email_consent(session, contact, now)
    return row


async def _by_request_id(
    session: AsyncSession, rid: uuid.UUID, contact_id: uuid.UUID | None
) -> Consent | None:
    row = await session.scalar(select(Consent).where(Consent.request_id == rid))
    if row is not None and contact_id is not None and row.contact_id != contact_id:
        raise AlreadyExistsError(
            field="request_id", description="request_id was already used for another contact"
        )
    return row


async def _decision_time(session: AsyncSession, contact: Contact, now: datetime) -> datetime:
    """When a decision taken under the person's lock counts as made: now, but never
    before the newest record on file (another replica's clock may run ahead, and a
    caller may have given a consent time up to the allowed skew in the future)."""
    newest = await session.scalar(
        select(func.max(Consent.consent_time)).where(Consent.contact_id == contact.id)
    )
    return now if newest is None or newest <= now else newest


async def lock_addresses(session: AsyncSession, keys: Sequence[str]) -> None:
    """Take several addresses' locks, in key order (two batches never wait on
    each other in a cycle)."""
    for key in sorted(set(keys)):
        await _lock_address(session, key)


async def _lock_address(session: AsyncSession, key: str) -> None:
    """Serialise subscribe and unsubscribe per address until commit, also while no
    contact row exists to lock (the suppression list outlives contacts). Two
    addresses sharing the 32-bit key only wait for each other."""
    objid = int(key[:8], 16) - (1 << 31)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:space, :objid)"),
        {"space": _ADDRESS_LOCK_SPACE, "objid": objid},
    )


async def _append(
    session: AsyncSession,
    contact: Contact,
    c: ConsentInput,
    rid: uuid.UUID | None,
    now: datetime,
) -> Consent:
    assert c.type is not None
    row = Consent(
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
    session.add(row)
    await session.flush()
    after_commit(session, CONSENT_RECORDS.labels(c.type.value, str(c.granted).lower()).inc)
    await _refresh_opt_in(session, contact, c.type)
    contact.updated_at = now
    await _channel_effects(session, contact, row, now)
    return row


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


async def _refresh_opt_in(session: AsyncSession, contact: Contact, type_: ConsentType) -> None:
    """Re-derive the denormalised flag from the newest record: a late-arriving
    older record must not override a newer decision."""
    column = _OPT_IN_COLUMNS.get(type_)
    if column is None:
        return
    newest = await session.scalar(
        select(Consent.granted)
        .where(Consent.contact_id == contact.id, Consent.type == type_)
        .order_by(Consent.consent_time.desc(), Consent.id.desc())
        .limit(1)
    )
    setattr(contact, column, bool(newest))


async def effective_consent(session: AsyncSession, contact_id: uuid.UUID) -> dict[str, bool]:
    """Every consent type mapped to its current state (False without a record)."""
    rows = await session.execute(
        select(Consent.type, Consent.granted)
        .where(Consent.contact_id == contact_id)
        .order_by(Consent.type, Consent.consent_time.desc(), Consent.id.desc())
        .ext(distinct_on(Consent.type))
    )
    state = {t.value: False for t in ConsentType}
    state.update({t.value: granted for t, granted in rows.all()})
    return state


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


@dataclass(frozen=True)
class Subscription:
    email: str
    source: str
    ip_address: str = ""
    user_agent: str = ""
    request_id: str = ""


async def subscribe_newsletter(
    db: Database, s: Subscription, *, clock: Clock
) -> tuple[ContactView, ConsentView]:
    """Grant email consent and join the newsletter segment, creating the contact
    if needed. An explicit opt-in lifts a suppression that came from an
    earlier unsubscribe (but not one for other reasons, such as a bounce)."""
    v = Violations()
    check.check_email(v, "email", s.email)
    consent = ConsentInput(ConsentType.EMAIL, True, s.source, s.ip_address, s.user_agent)
    _validate_consent(v, consent, "", clock(), timedelta(0))
    rid = check.check_request_id(v, "request_id", s.request_id)
    v.raise_if_any()
    email = check.normalize_email(s.email)
    key = check.email_key(email)
    async with db.transaction() as session:
        await _lock_address(session, key)
        now = clock()
        contact, _ = await get_or_create_by_email(session, email, now)
        if rid is not None and (earlier := await _by_request_id(session, rid, contact.id)):
            return (await contact_views(session, [contact]))[0], view_of(earlier)
        consent = replace(consent, consent_time=await _decision_time(session, contact, now))
        row = await _append(session, contact, consent, rid, now)
        if await _add_to_newsletter(session, contact.id, now):
            membership.record_changes(session, NEWSLETTER_SEGMENT, [contact.id], True, now)
        await session.execute(
            delete(Suppression).where(
                Suppression.email_sha256 == key,
                Suppression.reason == SUPPRESSION_REASON_UNSUBSCRIBED,
            )
        )
        await membership.mark_changed(session, [contact.id], now)
        state = await _consent_state(session, contact, [row])
        await outbox.enqueue(
            session,
            contact_key=key,
            kind=bus_pb2.KIND_NEWSLETTER_SUBSCRIBED,
            payload=bus_pb2.NewsletterSubscribed(state=state),
            now=now,
        )
        await flow_triggers.on_email_consent(session, contact, now)
        return (await contact_views(session, [contact]))[0], view_of(row)


async def join_newsletter(
    session: AsyncSession, contacts: Sequence[tuple[str, Contact]], now: datetime
) -> list[uuid.UUID]:
    """Add contacts (each with the name the caller gave it) to the newsletter
    segment, as AddToSegment does: only people who granted email marketing and
    are not suppressed may join (membership is a subscription, and the consent
    behind it must be on record), and each one who joins has their consent
    state sent, so the provider's newsletter list follows. Returns who joined
    (the caller records the changes)."""
    for name, contact in contacts:
        if not contact.email_opt_in:
            raise FailedPreconditionError(
                reason="NEWSLETTER_NEEDS_EMAIL_CONSENT",
                subject=name,
                description=f"{name} has not granted email marketing: SubscribeNewsletter "
                "records the consent and joins",
            )
    people = sorted(((check.email_key(c.email), c) for _, c in contacts), key=lambda p: p[0])
    for key, _ in people:
        await _lock_address(session, key)
    joined: list[uuid.UUID] = []
    for key, contact in people:
        if await session.get(Suppression, key) is not None:
            raise FailedPreconditionError(
                reason="NEWSLETTER_SUPPRESSED",
                subject=contact_name(contact.id),
                description="the address is on the suppression list: only a new explicit "
                "opt-in (SubscribeNewsletter) lifts an unsubscribe",
            )
        if not await _add_to_newsletter(session, contact.id, now):
            continue
        joined.append(contact.id)
        await outbox.enqueue(
            session,
            contact_key=key,
            kind=bus_pb2.KIND_CONSENT_CHANGED,
            payload=bus_pb2.ConsentChanged(state=await _consent_state(session, contact, [])),
            now=now,
        )
    return joined


async def _add_to_newsletter(session: AsyncSession, contact_id: uuid.UUID, now: datetime) -> bool:
    """Whether the contact joined (False: a member already)."""
    added = await session.execute(
        pg_insert(SegmentMembership)
        .values(contact_id=contact_id, segment=NEWSLETTER_SEGMENT, added_at=now)
        .on_conflict_do_nothing()
        .returning(SegmentMembership.contact_id)
    )
    return added.first() is not None


async def unsubscribe(
    db: Database,
    *,
    email: str,
    reason: str,
    clock: Clock,
    source: str = UNSUBSCRIBE_SOURCE,
    types: Sequence[ConsentType] = COMMUNICATION_TYPES,
) -> bool:
    """Withdraw every communication consent (or only `types`: a one-click
    unsubscribe withdraws email) and suppress the address at once, as a decision
    made now. Works for addresses we hold no contact for. Returns False when the
    address was already unsubscribed, in which case nothing is written. `source`
    is the withdrawals' (the preference page names itself)."""
    v = Violations()
    check.check_email(v, "email", email)
    check.check_text(v, "reason", reason, Suppression.detail)
    v.raise_if_any()
    email = check.normalize_email(email)
    key = check.email_key(email)
    async with db.transaction() as session:
        await _lock_address(session, key)
        now = clock()
        contact = await session.scalar(
            select(Contact).where(Contact.email == email).with_for_update()
        )
        newly_suppressed = await _suppress(session, key, reason, now)
        revoked: list[Consent] = []
        if contact is not None:
            decided = await _decision_time(session, contact, now)
            revoked = await _revoke_granted(session, contact, decided, now, types, source)
            was_member = await _leave_newsletter(session, contact.id, now)
            revoked_any = bool(revoked) or was_member
        else:
            revoked_any = False
        if not (newly_suppressed or revoked_any):
            return False
        if contact is not None:
            await membership.mark_changed(session, [contact.id], now)
        after_commit(session, UNSUBSCRIBES.inc)
        state = bus_pb2.ConsentState(email=email, opt_in=bus_pb2.OptIn(), suppressed=True)
        if contact is not None:
            state = await _consent_state(session, contact, revoked)
        payload = bus_pb2.ContactUnsubscribed(state=state, reason=reason or None)
        await outbox.enqueue(
            session,
            contact_key=key,
            kind=bus_pb2.KIND_CONTACT_UNSUBSCRIBED,
            payload=payload,
            now=now,
        )
        if contact is not None:
            await flow_triggers.on_unsubscribed(session, contact.id, now)
        return True


async def _suppress(
    session: AsyncSession,
    key: str,
    detail: str,
    now: datetime,
    reason: str = SUPPRESSION_REASON_UNSUBSCRIBED,
) -> bool:
    """Put the address on the suppression list; whether that changed it. A
    stronger reason (a hard bounce, a spam complaint) replaces an unsubscribe,
    which a new opt-in may lift: theirs it may not."""
    statement = pg_insert(Suppression).values(
        email_sha256=key, reason=reason, detail=detail or None, created_at=now
    )
    if reason == SUPPRESSION_REASON_UNSUBSCRIBED:
        statement = statement.on_conflict_do_nothing()
    else:
        statement = statement.on_conflict_do_update(
            index_elements=[Suppression.email_sha256],
            set_={"reason": reason, "detail": statement.excluded.detail},
            where=Suppression.reason == SUPPRESSION_REASON_UNSUBSCRIBED,
        )
    inserted = await session.scalar(statement.returning(Suppression.email_sha256))
    return inserted is not None


async def _revoke_granted(
    session: AsyncSession,
    contact: Contact,
    decided: datetime,
    now: datetime,
    types: Sequence[ConsentType] = COMMUNICATION_TYPES,
    source: str = UNSUBSCRIBE_SOURCE,
) -> list[Consent]:
    """Append a withdrawal for each of `types` that is currently granted."""
    state = await effective_consent(session, contact.id)
    revoked = []
    for type_ in types:
        if state[type_.value]:
            withdrawal = ConsentInput(type_, False, source, consent_time=decided)
            revoked.append(await _append(session, contact, withdrawal, None, now))
    return revoked


@dataclass(frozen=True)
class ReportedWithdrawal:
    """A withdrawal a provider reported (its webhook): an unsubscribe, a spam
    complaint, an SMS STOP, or a hard bounce (`types` empty: suppression only)."""

    types: tuple[ConsentType, ...]
    source: str  # the provider: the consent records' source
    suppression: str | None  # the suppression list's reason, or None
    detail: str
    reported_at: datetime  # when the person did it, by the provider's clock
    phone: str | None = None  # an SMS STOP's number (E.164), as the provider gave it


async def apply_reported(
    session: AsyncSession, contact: Contact | None, email: str, w: ReportedWithdrawal, now: datetime
) -> str:
    """Apply what a provider reported, under the address lock; what changed:
    "withdrawn", "suppressed", "sms_suppressed" joined by "+", "" (nothing: already
    so), or "stale" (the person decided otherwise with us after it: a newer record
    of each type stands, and the address is not suppressed). The provider is
    sent the resulting state, so every channel agrees.

    An SMS STOP is about its number: it goes on the SMS suppression list even where
    no SMS consent was on record, and a STOP for a number the contact no longer has
    leaves the contact's SMS consent (for their new number) as it is. It suppresses
    no address and ends no flow."""
    key = check.email_key(email)
    await _lock_address(session, key)  # the caller may hold it already: it stacks
    number = w.phone or (contact.phone if contact is not None else None)
    another_number = contact is not None and w.phone is not None and w.phone != contact.phone
    types = tuple(t for t in w.types if not (t is ConsentType.SMS and another_number))
    reported = replace(w, types=types)
    if contact is not None and types and await _decided_since(session, contact, reported):
        return "stale"
    suppressed = False  # the address (every channel)
    if w.suppression is not None:
        suppressed = await _suppress(session, key, w.detail, now, reason=w.suppression)
    revoked: list[Consent] = []
    left = False
    if contact is not None and types:
        decided = await _reported_decision_time(session, contact, reported, now)
        revoked = await _revoke_granted(session, contact, decided, now, types, w.source)
        if ConsentType.EMAIL in types or suppressed:
            left = await _leave_newsletter(session, contact.id, now)
    stopped = False  # the number
    if ConsentType.SMS in w.types and number is not None:
        stopped = await sms_suppression.suppress(session, number, w.source, now)
    if contact is not None and (revoked or suppressed or left):
        await membership.mark_changed(session, [contact.id], now)
        state = await _consent_state(session, contact, revoked)
        await _tell_provider(session, key, state, now)
    elif contact is None and suppressed:
        state = bus_pb2.ConsentState(email=email, opt_in=bus_pb2.OptIn(), suppressed=True)
        await _tell_provider(session, key, state, now)
    if contact is not None and (suppressed or ConsentType.EMAIL in types):
        await flow_triggers.on_unsubscribed(session, contact.id, now)
    changes = (
        ("withdrawn", revoked or left),
        ("suppressed", suppressed),
        ("sms_suppressed", stopped),
    )
    return "+".join(name for name, done in changes if done)


async def _tell_provider(
    session: AsyncSession, key: str, state: bus_pb2.ConsentState, now: datetime
) -> None:
    await outbox.enqueue(
        session,
        contact_key=key,
        kind=bus_pb2.KIND_CONSENT_CHANGED,
        payload=bus_pb2.ConsentChanged(state=state),
        now=now,
    )


# ActiveCampaign reports times to the second: a report cannot be ordered against a
# decision with us in the same second, and then the withdrawal wins (no message is
# sent on an order nobody can know).
REPORTED_TIME_PRECISION = timedelta(seconds=1)


async def _reported_decision_time(
    session: AsyncSession, contact: Contact, w: ReportedWithdrawal, now: datetime
) -> datetime:
    """When a reported withdrawal counts as made: when the person made it, but never
    before a record of its types within the report's precision (it is not stale, so
    it wins: recorded as the newest)."""
    reported = min(w.reported_at, now)
    newest = await session.scalar(
        select(func.max(Consent.consent_time)).where(
            Consent.contact_id == contact.id, Consent.type.in_(w.types)
        )
    )
    return reported if newest is None or newest <= reported else min(newest, now)


async def _decided_since(session: AsyncSession, contact: Contact, w: ReportedWithdrawal) -> bool:
    """Whether every type reported was granted again after the report (a
    re-subscription with us after the person unsubscribed at the provider)."""
    newer = await session.scalars(
        select(Consent.type)
        .where(
            Consent.contact_id == contact.id,
            Consent.type.in_(w.types),
            Consent.granted.is_(True),
            Consent.consent_time >= w.reported_at + REPORTED_TIME_PRECISION,
        )
        .distinct()
    )
    return set(newer) >= set(w.types)


async def _leave_newsletter(session: AsyncSession, contact_id: uuid.UUID, now: datetime) -> bool:
    left = await session.execute(
        delete(SegmentMembership).where(
            SegmentMembership.contact_id == contact_id,
            SegmentMembership.segment == NEWSLETTER_SEGMENT,
        )
    )
    was_member = bool(getattr(left, "rowcount", 0))
    if was_member:
        membership.record_changes(session, NEWSLETTER_SEGMENT, [contact_id], False, now)
    return was_member


async def _consent_state(
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
    return await _consent_state(session, contact, [])


# Each consent type as the bus names it: the value of the same name.
_BUS_CONSENT_TYPES: dict[ConsentType, Any] = {
    type_: bus_pb2.ConsentType.Value(f"CONSENT_TYPE_{type_.value}") for type_ in ConsentType
}


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
