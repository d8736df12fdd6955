"""Newsletter membership and unsubscribing: subscribing, joining and leaving the
newsletter, withdrawing consent and suppressing addresses, and applying the
one-clicks queued for them (consent.one_click).

Each use case here takes the address lock and first applies the one-clicks queued
for the address, so a click counts before a decision taken after it was answered.
An unsubscribe is set-based, each step one statement for any number of addresses,
so a one-click batch costs about what one address does."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from marketing.bus.v1 import bus_pb2
from marketing_runtime.clock import Clock
from sqlalchemy import any_, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.consent import one_click
from service.consent.addresses import lock_addresses, try_lock_addresses
from service.consent.rules import (
    ConsentInput,
    ConsentView,
    append,
    append_all,
    by_request_id,
    decision_time,
    decision_times,
    ids,
    newest_decisions,
    validate_consent,
    view_of,
)
from service.consent.snapshots import consent_state, read_consent_state
from service.contacts.rules import (
    NEWSLETTER_SEGMENT,
    ContactView,
    contact_name,
    contact_views,
    get_or_create_by_email,
)
from service.deliveries import outbox
from service.errors import FailedPreconditionError, Violations
from service.flows import triggers as flow_triggers
from service.metrics import ONE_CLICK_APPLIED, UNSUBSCRIBES
from service.segments import membership
from service.storage.bulk import insert_rows
from service.storage.database import Database, after_commit
from service.storage.models import Consent, ConsentType, Contact, SegmentMembership, Suppression

# Withdrawn by an unsubscribe: every channel we could reach the person on.
COMMUNICATION_TYPES = (ConsentType.EMAIL, ConsentType.SMS, ConsentType.PUSH, ConsentType.MARKETING)
UNSUBSCRIBE_SOURCE = "unsubscribe"
SUPPRESSION_REASON_UNSUBSCRIBED = "unsubscribed"
# A one-click unsubscribe (RFC 8058): the withdrawal's source, and what the
# suppression and the provider are told.
ONE_CLICK_SOURCE = "one_click"
ONE_CLICK_DETAIL = "List-Unsubscribe=One-Click"


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
    validate_consent(v, consent, "", clock(), timedelta(0))
    rid = check.check_request_id(v, "request_id", s.request_id)
    v.raise_if_any()
    email = check.normalize_email(s.email)
    key = check.email_key(email)
    async with db.transaction() as session:
        await lock_addresses(session, [key])
        now = clock()
        await apply_queued_one_clicks(session, [key], now)
        contact, _ = await get_or_create_by_email(session, email, now)
        if rid is not None and (earlier := await by_request_id(session, rid, contact.id)):
            return (await contact_views(session, [contact]))[0], view_of(earlier)
        consent = replace(consent, consent_time=await decision_time(session, contact, now))
        row = await append(session, contact, consent, rid, now)
        if await _add_to_newsletter(session, contact.id, now):
            membership.record_changes(session, NEWSLETTER_SEGMENT, [contact.id], True, now)
        await session.execute(
            delete(Suppression).where(
                Suppression.email_sha256 == key,
                Suppression.reason == SUPPRESSION_REASON_UNSUBSCRIBED,
            )
        )
        await membership.mark_changed(session, [contact.id], now)
        state = await read_consent_state(session, contact, [row])
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
            payload=bus_pb2.ConsentChanged(state=await read_consent_state(session, contact, [])),
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
        .where(Contact.id == any_(ids(contact_ids)))
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
    decided = await decision_times(
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


async def suppress(
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


async def revoke_granted(
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
    states = await newest_decisions(session, [contact.id for contact in contacts])
    withdrawals = [
        (contact, ConsentInput(type_, False, source, consent_time=decided[contact.id]))
        for contact in contacts
        for type_ in types
        if states[contact.id][type_.value]
    ]
    revoked: dict[uuid.UUID, list[Consent]] = defaultdict(list)
    for row in await append_all(session, withdrawals, now):
        revoked[row.contact_id].append(row)
    return dict(revoked)


async def leave_newsletter(session: AsyncSession, contact_id: uuid.UUID, now: datetime) -> bool:
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
                SegmentMembership.contact_id == any_(ids(contact_ids)),
                SegmentMembership.segment == NEWSLETTER_SEGMENT,
            )
            .returning(SegmentMembership.contact_id)
            .execution_options(synchronize_session=False)
        )
    )
    if left:
        membership.record_changes(session, NEWSLETTER_SEGMENT, sorted(left), False, now)
    return left
