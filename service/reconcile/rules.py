"""ReconcileContact: read the person back from the provider, compare (compare.py)
and, when anything differs, queue the work that brings the provider to our
state. Our records win: the repair is the same ContactUpserted and
ConsentChanged outbox rows an upsert and a consent change write, built from
what we hold when the repair commits, so the dispatcher applies them in order
with the person's other changes."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import Message
from marketing.bus.v1 import bus_pb2
from marketing_runtime.kinds import Kind
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.consent.snapshots import current_consent_state
from service.contacts.rules import contact_name, contact_payload, find_contact
from service.deliveries import outbox
from service.errors import NotFoundError
from service.metrics import RECONCILE_DIFFERENCES, RECONCILES
from service.reconcile.compare import Aspect, Difference, compare, held_back, repaired_aspects
from service.reconcile.provider import PersonReader
from service.storage.database import Database, after_commit
from service.storage.models import Contact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reconciliation:
    contact_id: uuid.UUID
    provider_id: str  # "" when the provider holds no such person
    differences: list[Difference]
    repair_queued: bool
    # Fields that differ but whose repair was not queued (compare.held_back).
    held_back: frozenset[str] = frozenset()


# The provider's side when it holds no such person: nothing at all, so every
# field we hold differs and the repair creates the person.
NOBODY = bus_pb2.ProviderPersonRead(email_marketing=False, sms_marketing=False)


async def reconcile_contact(
    db: Database,
    reader: PersonReader,
    *,
    name: str | None = None,
    email: str | None = None,
    now: datetime,
) -> Reconciliation:
    async with db.snapshot() as session:
        contact = await find_contact(session, name=name, email=email)
        contact_id, address = contact.id, contact.email
        ours = contact_payload(contact)
        consent = await current_consent_state(session, contact)
    found = await reader.read_person(address)
    differences = compare(ours, consent, found or NOBODY)
    held = held_back(differences, provider_holds=found is not None)
    repaired = await _repair(db, contact_id, repaired_aspects(differences, held), now)
    result = Reconciliation(
        contact_id, "" if found is None else found.provider_id, differences, repaired, held
    )
    _record(result)
    return result


async def _repair(db: Database, contact_id: uuid.UUID, aspects: set[Aspect], now: datetime) -> bool:
    """Queue, in one transaction, the whole profile and/or consent state as we
    hold them now (a change committed since the comparison is then sent too)."""
    if not aspects:
        return False
    async with db.transaction() as session:
        contact = await session.get(Contact, contact_id, with_for_update=True)
        if contact is None:  # erased meanwhile
            raise NotFoundError(resource_type="contact", resource_name=contact_name(contact_id))
        key = check.email_key(contact.email)
        if Aspect.PROFILE in aspects:
            payload = contact_payload(contact)
            await _enqueue(session, key, bus_pb2.KIND_CONTACT_UPSERTED, payload, now)
        if Aspect.CONSENT in aspects:
            state = await current_consent_state(session, contact)
            changed = bus_pb2.ConsentChanged(state=state)
            await _enqueue(session, key, bus_pb2.KIND_CONSENT_CHANGED, changed, now)
        after_commit(session, RECONCILES.labels("repaired").inc)
    return True


async def _enqueue(
    session: AsyncSession, key: str, kind: Kind, payload: Message, now: datetime
) -> None:
    await outbox.enqueue(session, contact_key=key, kind=kind, payload=payload, now=now)


def _record(result: Reconciliation) -> None:
    name = contact_name(result.contact_id)
    if not result.differences:
        RECONCILES.labels("in_sync").inc()
        log.info("reconciled %s: the provider matches", name)
        return
    for aspect, count in Counter(_metric_label(d) for d in result.differences).items():
        RECONCILE_DIFFERENCES.labels(aspect).inc(count)
    log.info(
        "reconciled %s: %d difference(s) (%s); repair %s; held back (withdrawn there): %s",
        name,
        len(result.differences),
        ", ".join(d.field for d in result.differences),
        "queued" if result.repair_queued else "not queued",
        ", ".join(sorted(result.held_back)) or "none",
    )


def _metric_label(difference: Difference) -> str:
    """A bounded label: custom property keys are the caller's, so they share one."""
    if difference.field.startswith("custom_properties."):
        return "custom_properties"
    return difference.field
