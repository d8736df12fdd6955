"""Engagement the providers' webhooks reported (the dispatcher's receiver puts
it on `marketing.webhooks.engagement`), applied to PostgreSQL. Each
(provider, external_id) is recorded once: a delivery the provider repeats, or
one JetStream redelivers, changes nothing the second time. What each kind does
to the person, in the transaction that records it:

    UNSUBSCRIBED      email consent withdrawn (the record's source: the
                      provider), the address suppressed ("unsubscribed"), the
                      newsletter left
    SPAM_COMPLAINT    the same, suppressed as "spam_complaint"
    BOUNCED, hard     the address suppressed ("hard_bounce"); consent records stay
    SMS_UNSUBSCRIBED  SMS consent withdrawn and the number put on the SMS
                      suppression list (also a number no contact has)
    the others        recorded only: the campaign and flow metrics count them

A withdrawal older than the person's own newer decision with us (they
subscribed again since) is recorded as "stale" and changes nothing."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from marketing.bus.v1 import bus_pb2
from sqlalchemy import ARRAY, String, any_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.validation import email_key, is_e164, normalize_email, phone_as_stored
from service.consent.addresses import lock_addresses
from service.consent.reported import ReportedWithdrawal, apply_reported
from service.consent.rules import ConsentType
from service.flows.people import lock_people
from service.metrics import ENGAGEMENT
from service.sms import suppression as sms_suppression
from service.storage.bulk import insert_rows, rows_table
from service.storage.database import after_commit
from service.storage.models import Contact, Engagement

TYPES = {
    bus_pb2.ENGAGEMENT_TYPE_DELIVERED: "delivered",
    bus_pb2.ENGAGEMENT_TYPE_OPENED: "opened",
    bus_pb2.ENGAGEMENT_TYPE_CLICKED: "clicked",
    bus_pb2.ENGAGEMENT_TYPE_BOUNCED: "bounced",
    bus_pb2.ENGAGEMENT_TYPE_SPAM_COMPLAINT: "spam_complaint",
    bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED: "unsubscribed",
    bus_pb2.ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED: "sms_unsubscribed",
    bus_pb2.ENGAGEMENT_TYPE_SENT: "sent",
}
NO_CONTACT = "no_contact"  # a withdrawal for someone we do not know (and no address)


@dataclass(frozen=True, slots=True)
class Reported:
    """One engagement as the bus carried it, with when the receiver took it."""

    engagement: bus_pb2.Engagement
    received_at: datetime


async def record(session: AsyncSession, reported: Sequence[Reported], now: datetime) -> int:
    """Record the engagements not seen before and apply what they do; how many
    were new."""
    known = [r for r in reported if r.engagement.type in TYPES and r.engagement.external_id]
    if not known:
        return 0
    unique = {(r.engagement.provider, r.engagement.external_id): r for r in known}
    people = await _contacts(session, list(unique.values()))
    rows = [_row(r, people.get(_who(r.engagement)), now) for _, r in sorted(unique.items())]
    inserted = await session.execute(
        insert_rows(Engagement, rows)
        .on_conflict_do_nothing()
        .returning(Engagement.provider, Engagement.external_id)
    )
    new = {(provider, external_id) for provider, external_id in inserted}
    fresh = [r for key, r in sorted(unique.items()) if key in new]
    effects = await _apply_effects(session, fresh, people, now)
    if effects:
        await _record_effects(session, effects)
    counted = [(r.engagement.provider, TYPES[r.engagement.type]) for r in fresh]
    after_commit(session, lambda: _count(counted))
    return len(fresh)


def _who(e: bus_pb2.Engagement) -> str:
    return normalize_email(e.email) if e.email else phone_as_stored(e.phone)


class Person(NamedTuple):
    id: uuid.UUID
    email: str


async def _contacts(session: AsyncSession, reported: list[Reported]) -> dict[str, Person]:
    """The contacts the engagements name, by normalised email, or by phone when
    the provider gave no email (an SMS STOP)."""
    emails = {normalize_email(r.engagement.email) for r in reported if r.engagement.email}
    phones = {
        phone_as_stored(r.engagement.phone)
        for r in reported
        if not r.engagement.email and r.engagement.phone
    }
    if not emails and not phones:
        return {}
    # Two lookups, each by its own index (one OR of both would scan every contact).
    # Each list bound as one array: a batch may name 100,000 people, past the
    # 32,767 parameters a statement may have.
    columns = (Contact.id, Contact.email, Contact.phone)
    found = list(
        (await session.execute(select(*columns).where(Contact.email == any_(_texts(emails))))).all()
    )
    if phones:
        by_phone = select(*columns).where(Contact.phone == any_(_texts(phones)))
        found += (await session.execute(by_phone)).all()
    people: dict[str, Person] = {}
    for contact_id, email, phone in found:
        people[email] = Person(contact_id, email)
        if phone in phones:
            people[phone] = Person(contact_id, email)
    return people


def _texts(values: set[str]) -> Any:
    return bindparam(None, sorted(values), ARRAY(String))


def _row(r: Reported, contact: Person | None, now: datetime) -> dict[str, object]:
    e = r.engagement
    return {
        "provider": e.provider[:32],
        "external_id": e.external_id[:128],
        "type": TYPES[e.type],
        "provider_type": e.provider_type[:128],
        "contact_id": contact.id if contact is not None else None,
        "email_sha256": email_key(e.email) if e.email else None,
        "campaign_id": e.campaign_id[:128],
        "flow_id": e.flow_id[:128],
        "message_id": e.message_id[:128],
        "url": e.url,
        "bounce_type": e.bounce_type[:16],
        "detail": e.detail[:255],
        "occurred_at": _occurred(r, now),
        "received_at": r.received_at,
        "recorded_at": now,
    }


def withdrawal_of(e: bus_pb2.Engagement, at: datetime) -> ReportedWithdrawal | None:
    """What an engagement asks of the person's consent; None: nothing."""
    source = e.provider
    if e.type == bus_pb2.ENGAGEMENT_TYPE_UNSUBSCRIBED:
        return ReportedWithdrawal((ConsentType.EMAIL,), source, "unsubscribed", e.detail, at)
    if e.type == bus_pb2.ENGAGEMENT_TYPE_SPAM_COMPLAINT:
        return ReportedWithdrawal((ConsentType.EMAIL,), source, "spam_complaint", e.detail, at)
    if e.type == bus_pb2.ENGAGEMENT_TYPE_BOUNCED and e.bounce_type.lower() == "hard":
        return ReportedWithdrawal((), source, "hard_bounce", e.detail, at)
    if e.type == bus_pb2.ENGAGEMENT_TYPE_SMS_UNSUBSCRIBED:
        number = phone_as_stored(e.phone)
        phone = number if is_e164(number) else None
        return ReportedWithdrawal((ConsentType.SMS,), source, None, e.detail, at, phone)
    return None


async def _apply_effects(
    session: AsyncSession, fresh: list[Reported], people: dict[str, Person], now: datetime
) -> dict[tuple[str, str], str]:
    """Each new withdrawal applied, each person's oldest first. Locks are taken
    up front in the order every consent writer takes them (the address, the
    contact row, the person's flow decisions), each kind in key order, so that
    this batch and an unsubscribe, a consent record or a flow batch never wait
    on each other in a cycle."""
    asks = []
    for r in fresh:
        withdrawal = withdrawal_of(r.engagement, _occurred(r, now))
        if withdrawal is not None:
            asks.append((r, withdrawal))
    if not asks:
        return {}
    await lock_addresses(session, [email_key(a) for r, _ in asks if (a := _address(r, people))])
    ids = sorted({p.id for r, _ in asks if (p := people.get(_who(r.engagement)))})
    contacts = {
        c.id: c
        for c in await session.scalars(
            select(Contact).where(Contact.id.in_(ids)).order_by(Contact.id).with_for_update()
        )
    }
    await lock_people(session, set(ids))
    asks.sort(key=lambda a: a[1].reported_at)
    effects: dict[tuple[str, str], str] = {}
    for r, withdrawal in asks:
        e = r.engagement
        person = people.get(_who(e))
        address = _address(r, people)
        if address is None:
            effects[(e.provider, e.external_id)] = await _stop_without_contact(
                session, withdrawal, now
            )
            continue
        contact = None if person is None else contacts.get(person.id)
        effect = await apply_reported(session, contact, address, withdrawal, now)
        effects[(e.provider, e.external_id)] = effect or "none"
    return effects


async def _stop_without_contact(
    session: AsyncSession, withdrawal: ReportedWithdrawal, now: datetime
) -> str:
    """A STOP from a number no contact has still stops the number."""
    if ConsentType.SMS not in withdrawal.types or withdrawal.phone is None:
        return NO_CONTACT
    if await sms_suppression.suppress(session, withdrawal.phone, withdrawal.source, now):
        return "sms_suppressed"
    return NO_CONTACT


def _occurred(r: Reported, now: datetime) -> datetime:
    """When the person did it, by the provider; else when we heard of it."""
    e = r.engagement
    return e.occur_time.ToDatetime(tzinfo=now.tzinfo) if e.HasField("occur_time") else r.received_at


def _address(r: Reported, people: dict[str, Person]) -> str | None:
    """The email the withdrawal is about: the provider's, or the contact's
    found by phone; None when neither is known."""
    if r.engagement.email:
        return normalize_email(r.engagement.email)
    contact = people.get(phone_as_stored(r.engagement.phone))
    return contact.email if contact is not None else None


async def _record_effects(session: AsyncSession, effects: dict[tuple[str, str], str]) -> None:
    changes = rows_table(
        Engagement,
        ["provider", "external_id", "effect"],
        [{"provider": p, "external_id": x, "effect": effect} for (p, x), effect in effects.items()],
    )
    await session.execute(
        update(Engagement)
        .where(
            Engagement.provider == changes.c.provider,
            Engagement.external_id == changes.c.external_id,
        )
        .values(effect=changes.c.effect)
        .execution_options(synchronize_session=False)
    )


def _count(counted: list[tuple[str, str]]) -> None:
    for (provider, type_), n in Counter(counted).items():
        ENGAGEMENT.labels(provider, type_).inc(n)
