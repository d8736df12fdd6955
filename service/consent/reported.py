"""Withdrawals a provider reported (its webhooks): an unsubscribe, a spam
complaint, an SMS STOP or a hard bounce, applied as the person's decision at the
provider's time unless they decided otherwise with us after it, and the
resulting state sent back so every channel agrees."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from marketing.bus.v1 import bus_pb2
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.consent.addresses import lock_addresses
from service.consent.snapshots import read_consent_state
from service.consent.unsubscribing import (
    apply_queued_one_clicks,
    leave_newsletter,
    revoke_granted,
    suppress,
)
from service.deliveries import outbox
from service.flows import triggers as flow_triggers
from service.segments import membership
from service.sms import suppression as sms_suppression
from service.storage.models import Consent, ConsentType, Contact


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
        suppressed = await suppress(session, key, w.detail, now, reason=w.suppression)
    revoked: list[Consent] = []
    left = False
    if contact is not None and types:
        decided = await _reported_decision_time(session, contact, reported, now)
        revoked = await revoke_granted(session, contact, decided, now, types, w.source)
        if ConsentType.EMAIL in types or suppressed:
            left = await leave_newsletter(session, contact.id, now)
    stopped = False  # the number
    if ConsentType.SMS in w.types and number is not None:
        stopped = await sms_suppression.suppress(session, number, w.source, now)
    if contact is not None and (revoked or suppressed or left):
        await membership.mark_changed(session, [contact.id], now)
        state = await read_consent_state(session, contact, revoked)
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
