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
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime.clock import Clock
from marketing_runtime.timestamps import to_timestamp
from sqlalchemy import ARRAY, Row, Uuid, any_, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.consent import one_click
from service.consent.addresses import lock_addresses, try_lock_addresses
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
from service.metrics import CONSENT_RECORDS, ONE_CLICK_APPLIED, UNSUBSCRIBES
from service.push import tokens as push_tokens
from service.segments import membership
from service.sms import suppression as sms_suppression
from service.storage.bulk import insert_rows
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
# A one-click unsubscribe (RFC 8058): the withdrawal's source, and what the
# suppression and the provider are told.
ONE_CLICK_SOURCE = "one_click"
ONE_CLICK_DETAIL = "List-Unsubscribe=One-Click"


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
        await flow_triggers.on_unsubscribed(session, [contact.id], now)
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
    return (await _decision_times(session, {contact.id: now}))[contact.id]


async def _decision_times(
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
        .where(Consent.contact_id == any_(_ids(decided)))
        .group_by(Consent.contact_id)
    )
    newest = {contact_id: time for contact_id, time in rows}
    return {contact_id: max(at, newest.get(contact_id, at)) for contact_id, at in decided.items()}


def _ids(contact_ids: Collection[uuid.UUID]) -> Any:
    """Contact ids bound as one array (an IN list of many values costs more to
    compile than the query takes to run)."""
    return bindparam(None, list(contact_ids), ARRAY(Uuid))


async def _append(
    session: AsyncSession,
    contact: Contact,
    c: ConsentInput,
    rid: uuid.UUID | None,
    now: datetime,
) -> Consent:
    return (await _append_all(session, [(contact, c)], now, rid))[0]


async def _append_all(
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
    newest = await _newest_decisions(session, {contact.id for contact, _ in flagged})
    for contact, type_ in flagged:
        setattr(contact, _OPT_IN_COLUMNS[type_], newest[contact.id][type_.value])


async def effective_consent(session: AsyncSession, contact_id: uuid.UUID) -> dict[str, bool]:
    """Every consent type mapped to its current state (False without a record)."""
    return (await _newest_decisions(session, {contact_id}))[contact_id]


async def _newest_decisions(
    session: AsyncSession, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, bool]]:
    """Each contact's consent types mapped to the `granted` of their newest record
    (False without one), in one query."""
    if not contact_ids:
        return {}
    rows = await session.execute(
        select(Consent.contact_id, Consent.type, Consent.granted)
        .where(Consent.contact_id == any_(_ids(contact_ids)))
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
        await lock_addresses(session, [key])
        now = clock()
        await apply_queued_one_clicks(session, [key], now)
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
    await lock_addresses(session, [key for key, _ in people])
    await apply_queued_one_clicks(session, [key for key, _ in people], now)
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


@dataclass(frozen=True)
class Unsubscribing:
    """What an unsubscribe withdraws, and how it is recorded."""

    types: tuple[ConsentType, ...]
    source: str  # the withdrawals' source
    reason: str  # the suppression's detail, and the reason the provider is told


# RFC 8058: email withdrawn (other channels' records stay: the suppressed address
# gets nothing on any channel), the newsletter left, the address suppressed.
ONE_CLICK = Unsubscribing((ConsentType.EMAIL,), ONE_CLICK_SOURCE, ONE_CLICK_DETAIL)


@dataclass(frozen=True)
class _Address:
    """An address to unsubscribe, whose lock the transaction holds."""

    key: str  # its SHA-256
    email: str | None  # None: only the key is known (its contact was erased since)
    contact: Contact | None  # its contact, the row locked; None: we hold none
    decided_at: datetime  # when the person decided: now for a call, the click for a one-click


async def unsubscribe(
    db: Database,
    *,
    email: str,
    reason: str,
    clock: Clock,
    source: str = UNSUBSCRIBE_SOURCE,
    types: Sequence[ConsentType] = COMMUNICATION_TYPES,
) -> bool:
    """Withdraw every communication consent (or only `types`) and suppress the
    address at once, as a decision made now. Works for addresses we hold no
    contact for. Returns False when the address was already unsubscribed, in which
    case nothing is written. `source` is the withdrawals' (the preference page
    names itself)."""
    v = Violations()
    check.check_email(v, "email", email)
    check.check_text(v, "reason", reason, Suppression.detail)
    v.raise_if_any()
    email = check.normalize_email(email)
    key = check.email_key(email)
    how = Unsubscribing(tuple(types), source, reason)
    async with db.transaction() as session:
        await lock_addresses(session, [key])
        now = clock()
        await apply_queued_one_clicks(session, [key], now)
        contact = await session.scalar(
            select(Contact).where(Contact.email == email).with_for_update()
        )
        return bool(
            await _unsubscribe_locked(session, [_Address(key, email, contact, now)], how, now)
        )


async def apply_queued_one_clicks(
    session: AsyncSession, keys: Collection[str], now: datetime
) -> int:
    """Apply the one-clicks queued for these addresses, whose locks the transaction
    holds. Every consent write on an address calls this first, so a click answered
    before the write began counts before the write's decision, as it would have had
    it been applied at once. How many clicks were applied."""
    clicks = await one_click.take(session, list(keys))
    if not clicks:
        return 0
    contacts = await _lock_contacts(session, {click.contact_id for click in clicks})
    addresses = []
    for click in clicks:
        contact = contacts.get(click.contact_id)
        email = contact.email if contact is not None else None
        addresses.append(_Address(click.key, email, contact, click.clicked_at))
    await _unsubscribe_locked(session, addresses, ONE_CLICK, now)
    lags_s = [(now - click.clicked_at).total_seconds() for click in clicks]
    after_commit(session, lambda: _observe_one_click_lags(lags_s))
    return len(clicks)


def _observe_one_click_lags(lags_s: Sequence[float]) -> None:
    for lag_s in lags_s:
        ONE_CLICK_APPLIED.observe(lag_s)


async def apply_oldest_one_clicks(session: AsyncSession, limit: int, now: datetime) -> int:
    """The one-click worker's batch: the clicks queued for the addresses of the oldest
    `limit` clicks, except the addresses another transaction holds (a consent write
    there applies them, or the next batch does). How many clicks were applied."""
    keys = await one_click.oldest_addresses(session, limit)
    taken = await try_lock_addresses(session, keys)
    return await apply_queued_one_clicks(session, taken, now)


async def _lock_contacts(
    session: AsyncSession, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Contact]:
    """The contacts of these ids that exist, their rows locked in id order, read
    afresh (a caller may hold them as read before the lock)."""
    rows = await session.scalars(
        select(Contact)
        .where(Contact.id == any_(_ids(contact_ids)))
        .order_by(Contact.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {contact.id: contact for contact in rows}


async def _unsubscribe_locked(
    session: AsyncSession, addresses: Sequence[_Address], how: Unsubscribing, now: datetime
) -> set[str]:
    """Unsubscribe addresses whose locks (and contacts' rows) the transaction holds,
    each step one statement for all of them: every address suppressed; each
    contact's `how.types` withdrawn where granted, as decided at its `decided_at`
    (never before its newest record), and the newsletter left; then the provider
    told of each change, segments and flows. The keys of the addresses that
    changed: an address already unsubscribed writes nothing."""
    suppressed = await _suppress_all(session, [a.key for a in addresses], how.reason, now)
    people = {a.contact.id: a.contact for a in addresses if a.contact is not None}
    decided = await _decision_times(
        session, {a.contact.id: a.decided_at for a in addresses if a.contact is not None}
    )
    revoked = await _revoke_granted_all(
        session, list(people.values()), decided, now, how.types, how.source
    )
    left = await _leave_newsletter_all(session, list(people), now)
    changed = [
        a
        for a in addresses
        if a.key in suppressed
        or (a.contact is not None and (a.contact.id in revoked or a.contact.id in left))
    ]
    if not changed:
        return set()
    changed_ids = sorted({a.contact.id for a in changed if a.contact is not None})
    await membership.mark_changed(session, changed_ids, now)
    await _tell_unsubscribed(session, changed, revoked, how.reason, now)
    await flow_triggers.on_unsubscribed(session, changed_ids, now)
    keys = {a.key for a in changed}
    after_commit(session, lambda: UNSUBSCRIBES.inc(len(keys)))
    return keys


async def _tell_unsubscribed(
    session: AsyncSession,
    changed: Sequence[_Address],
    revoked: Mapping[uuid.UUID, list[Consent]],
    reason: str,
    now: datetime,
) -> None:
    """The provider's work: each address's whole consent state after the change."""
    known = [a.contact for a in changed if a.contact is not None]
    views = {view.id: view for view in await contact_views(session, known)} if known else {}
    rows = []
    for a in changed:
        if a.contact is not None:
            state = consent_state(views[a.contact.id], revoked.get(a.contact.id, []))
        elif a.email is not None:
            state = bus_pb2.ConsentState(email=a.email, opt_in=bus_pb2.OptIn(), suppressed=True)
        else:  # erased after a one-click: the provider was asked to erase the person
            continue
        payload = bus_pb2.ContactUnsubscribed(state=state, reason=reason or None)
        rows.append((a.key, bus_pb2.KIND_CONTACT_UNSUBSCRIBED, payload.SerializeToString()))
    await outbox.enqueue_many(session, rows, now=now)


async def _suppress(
    session: AsyncSession,
    key: str,
    detail: str,
    now: datetime,
    reason: str = SUPPRESSION_REASON_UNSUBSCRIBED,
) -> bool:
    """Put the address on the suppression list; whether that changed it."""
    return key in await _suppress_all(session, [key], detail, now, reason)


async def _suppress_all(
    session: AsyncSession,
    keys: Collection[str],
    detail: str,
    now: datetime,
    reason: str = SUPPRESSION_REASON_UNSUBSCRIBED,
) -> set[str]:
    """Put the addresses on the suppression list, in one statement; those it
    changed. A stronger reason (a hard bounce, a spam complaint) replaces an
    unsubscribe, which a new opt-in may lift: theirs it may not."""
    rows = [
        {"email_sha256": key, "reason": reason, "detail": detail or None, "created_at": now}
        for key in sorted(set(keys))
    ]
    if not rows:
        return set()
    statement = insert_rows(Suppression, rows)
    if reason == SUPPRESSION_REASON_UNSUBSCRIBED:
        statement = statement.on_conflict_do_nothing()
    else:
        statement = statement.on_conflict_do_update(
            index_elements=[Suppression.email_sha256],
            set_={"reason": reason, "detail": statement.excluded.detail},
            where=Suppression.reason == SUPPRESSION_REASON_UNSUBSCRIBED,
        )
    return set(await session.scalars(statement.returning(Suppression.email_sha256)))


async def _revoke_granted(
    session: AsyncSession,
    contact: Contact,
    decided: datetime,
    now: datetime,
    types: Sequence[ConsentType] = COMMUNICATION_TYPES,
    source: str = UNSUBSCRIBE_SOURCE,
) -> list[Consent]:
    revoked = await _revoke_granted_all(
        session, [contact], {contact.id: decided}, now, types, source
    )
    return revoked.get(contact.id, [])


async def _revoke_granted_all(
    session: AsyncSession,
    contacts: Sequence[Contact],
    decided: Mapping[uuid.UUID, datetime],
    now: datetime,
    types: Sequence[ConsentType],
    source: str,
) -> dict[uuid.UUID, list[Consent]]:
    """Append a withdrawal, at the contact's `decided` time, for each of `types`
    each contact has granted now; the records, by contact (none: nothing to withdraw)."""
    if not contacts:
        return {}
    states = await _newest_decisions(session, [contact.id for contact in contacts])
    withdrawals = [
        (contact, ConsentInput(type_, False, source, consent_time=decided[contact.id]))
        for contact in contacts
        for type_ in types
        if states[contact.id][type_.value]
    ]
    revoked: dict[uuid.UUID, list[Consent]] = defaultdict(list)
    for row in await _append_all(session, withdrawals, now):
        revoked[row.contact_id].append(row)
    return dict(revoked)


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
    await lock_addresses(session, [key])  # the caller may hold it already: it stacks
    await apply_queued_one_clicks(session, [key], now)
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
        await flow_triggers.on_unsubscribed(session, [contact.id], now)
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
    return contact_id in await _leave_newsletter_all(session, [contact_id], now)


async def _leave_newsletter_all(
    session: AsyncSession, contact_ids: Collection[uuid.UUID], now: datetime
) -> set[uuid.UUID]:
    """Take the contacts out of the newsletter, in one statement; those who were in."""
    if not contact_ids:
        return set()
    left = set(
        await session.scalars(
            delete(SegmentMembership)
            .where(
                SegmentMembership.contact_id == any_(_ids(contact_ids)),
                SegmentMembership.segment == NEWSLETTER_SEGMENT,
            )
            .returning(SegmentMembership.contact_id)
            .execution_options(synchronize_session=False)
        )
    )
    if left:
        membership.record_changes(session, NEWSLETTER_SEGMENT, sorted(left), False, now)
    return left


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
