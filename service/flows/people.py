"""Who the contacts a decision concerns are: their emails, whether each
address is suppressed (a suppressed address enters no flow) and whether the
person granted email marketing (consent is never assumed)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ARRAY, DateTime, String, Uuid, any_, bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.common.validation import email_key
from service.storage.models import Contact, Suppression


def at_times(pairs: list[tuple[uuid.UUID, datetime]], name: str) -> Any:
    """(contact, time) pairs as a derived table `name(contact_id, at)`, bound
    as two arrays: what a purchase cancels or an exit ends is matched against
    each person's own time in one statement."""
    return (
        func.unnest(
            bindparam(None, [c for c, _ in pairs], ARRAY(Uuid)),
            bindparam(None, [t for _, t in pairs], ARRAY(DateTime(timezone=True))),
        )
        .table_valued("contact_id", "at")
        .render_derived(name)
    )


class Person(NamedTuple):
    email: str
    suppressed: bool
    consented: bool  # email marketing granted (the newest record's decision)


def _any_of(values: list[Any], item_type: Any) -> Any:
    """`= ANY(array)`: one bound array, rather than a bound value each (a batch of
    2,000 compiled as 2,000 parameters cost more than its query)."""
    return any_(bindparam(None, values, ARRAY(item_type)))


async def contact_emails(
    session: AsyncSession, contact_ids: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(Contact.id, Contact.email).where(Contact.id == _any_of(list(contact_ids), Uuid))
    )
    return {contact_id: email for contact_id, email in rows}


async def people(session: AsyncSession, contact_ids: set[uuid.UUID]) -> dict[uuid.UUID, Person]:
    """Each contact as decisions need them."""
    rows = (
        await session.execute(
            select(Contact.id, Contact.email, Contact.email_opt_in).where(
                Contact.id == _any_of(list(contact_ids), Uuid)
            )
        )
    ).all()
    keys = {contact_id: email_key(email) for contact_id, email, _ in rows}
    suppressed = set(
        await session.scalars(
            select(Suppression.email_sha256).where(
                Suppression.email_sha256 == _any_of(list(keys.values()), String)
            )
        )
    )
    return {
        contact_id: Person(email, keys[contact_id] in suppressed, opted_in)
        for contact_id, email, opted_in in rows
    }


# Advisory lock space of flow decisions ("flow"): a person's decisions are
# taken one transaction at a time, so an exit never misses an enrolment
# committed a moment later by another batch (a join and a leave, an abandoned
# cart and a purchase, taken by two workers at once).
_DECISIONS = 0x666C6F77
_LOCK_PEOPLE = text(
    "SELECT pg_advisory_xact_lock(:space, hashtext(CAST(p.id AS text)))"
    " FROM (SELECT id FROM unnest(CAST(:ids AS uuid[])) AS u(id) ORDER BY id) AS p"
)


async def lock_people(session: AsyncSession, contact_ids: set[uuid.UUID]) -> None:
    """Hold these people's decisions until commit, in id order (two batches
    sharing people never wait on each other in a cycle)."""
    if contact_ids:
        # The statement orders them (ORDER BY id), as PostgreSQL orders uuids.
        await session.execute(_LOCK_PEOPLE, {"space": _DECISIONS, "ids": list(contact_ids)})
