"""Back-in-stock waitlists: joining and leaving one, and listing them. A
restock (service.waitlists.restocks) says whom it answers; the flow worker
notifies them (service.waitlists.notifying)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from marketing.bus.v1 import bus_pb2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.contacts.rules import contact_payload, get_or_create_by_email
from service.deliveries import outbox
from service.errors import NotFoundError, Violations
from service.flows.people import contact_emails
from service.segments import membership
from service.storage.database import Database
from service.storage.models import BackInStockSubscription, Contact
from service.waitlists.states import NOTIFYING, REMOVED, WAITING

UNSUBSCRIBED = "unsubscribed"
MAX_ID = 128
MAX_SOURCE = 100
_ID = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces: safe in URLs and logs


@dataclass(frozen=True)
class SubscriptionView:
    id: uuid.UUID
    contact_id: uuid.UUID
    email: str
    product_id: str
    variant_id: str
    state: str
    reason: str | None
    source: str
    created_at: datetime
    ended_at: datetime | None
    enrolment_id: uuid.UUID | None


@dataclass(frozen=True)
class SubscriptionPage:
    subscriptions: list[SubscriptionView]
    next_page_token: str


def check_product(v: Violations, product_id: str, variant_id: str, prefix: str = "") -> None:
    if not _ID.fullmatch(product_id):
        v.add(f"{prefix}product_id", "INVALID_ID", "1 to 128 printable ASCII characters, no spaces")
    if variant_id and not _ID.fullmatch(variant_id):
        v.add(f"{prefix}variant_id", "INVALID_ID", "1 to 128 printable ASCII characters, no spaces")


async def subscribe(
    db: Database, *, email: str, product_id: str, variant_id: str, source: str, now: datetime
) -> tuple[SubscriptionView, bool]:
    """Put the person on the waitlist (the contact is created when missing);
    the subscription, and whether it is new."""
    v = Violations()
    check.check_email(v, "email", email)
    check_product(v, product_id, variant_id)
    if len(source) > MAX_SOURCE:
        v.add("source", "TOO_LONG", f"at most {MAX_SOURCE} characters")
    v.raise_if_any()
    email = check.normalize_email(email)
    async with db.transaction() as session:
        contact, created_contact = await get_or_create_by_email(session, email, now)
        if created_contact:
            await outbox.enqueue(
                session,
                contact_key=check.email_key(email),
                kind=bus_pb2.KIND_CONTACT_UPSERTED,
                payload=contact_payload(contact),
                now=now,
            )
            await membership.mark_changed(session, [contact.id], now)
        existing = await _waiting(session, contact.id, product_id, variant_id)
        if existing is not None:
            return _view(existing, email), False
        row = BackInStockSubscription(
            id=uuid.uuid4(),
            contact_id=contact.id,
            product_id=product_id,
            variant_id=variant_id,
            state=WAITING,
            source=source.strip(),
            created_at=now,
        )
        session.add(row)
        await session.flush()
        return _view(row, email), True


async def unsubscribe(
    db: Database, *, email: str, product_id: str, variant_id: str, now: datetime
) -> SubscriptionView:
    v = Violations()
    check.check_email(v, "email", email)
    check_product(v, product_id, variant_id)
    v.raise_if_any()
    email = check.normalize_email(email)
    async with db.transaction() as session:
        contact_id = await session.scalar(
            select(Contact.id).where(Contact.email == email).with_for_update()
        )
        row = None
        if contact_id is not None:
            row = await _waiting(session, contact_id, product_id, variant_id, states=(WAITING,))
        if row is None:
            raise NotFoundError(
                resource_type="backInStockSubscription",
                resource_name=f"{email} waiting for {product_id}/{variant_id or '*'}",
            )
        row.state, row.reason, row.ended_at = REMOVED, UNSUBSCRIBED, now
        await session.flush()
        return _view(row, email)


async def _waiting(
    session: AsyncSession,
    contact_id: uuid.UUID,
    product_id: str,
    variant_id: str,
    *,
    states: tuple[str, ...] = (WAITING, NOTIFYING),
) -> BackInStockSubscription | None:
    return await session.scalar(
        select(BackInStockSubscription)
        .where(
            BackInStockSubscription.contact_id == contact_id,
            BackInStockSubscription.product_id == product_id,
            BackInStockSubscription.variant_id == variant_id,
            BackInStockSubscription.state.in_(states),
        )
        .with_for_update()
    )


async def list_subscriptions(
    db: Database,
    tokens: PageTokens,
    *,
    product_id: str,
    variant_id: str,
    contact_id: uuid.UUID | None,
    states: Sequence[str],
    page_size: int,
    page_token: str,
    violations: Violations,
) -> SubscriptionPage:
    """Oldest first, of a product (and variant) or of a contact."""
    scope = (
        f"backInStockSubscriptions?product={product_id}&variant={variant_id}"
        f"&contact={contact_id or ''}&states={','.join(sorted(states))}"
    )
    paging = Paging(scope=scope, key=(KeyKind.TIME, KeyKind.UUID))
    request = tokens.request(violations, paging, page_size=page_size, page_token=page_token)
    violations.raise_if_any()
    query = select(BackInStockSubscription)
    if contact_id is not None:
        query = query.where(BackInStockSubscription.contact_id == contact_id)
    else:
        query = query.where(BackInStockSubscription.product_id == product_id)
        if variant_id:
            query = query.where(BackInStockSubscription.variant_id == variant_id)
    if states:
        query = query.where(BackInStockSubscription.state.in_(states))
    async with db.transaction() as session:
        rows, token = await read_page(
            session,
            tokens,
            paging,
            request,
            query,
            (BackInStockSubscription.created_at, BackInStockSubscription.id),
        )
        return SubscriptionPage(await views(session, rows), token)


async def views(
    session: AsyncSession, rows: Sequence[BackInStockSubscription]
) -> list[SubscriptionView]:
    emails = await contact_emails(session, {r.contact_id for r in rows})
    return [_view(r, emails.get(r.contact_id, "")) for r in rows]


def _view(row: BackInStockSubscription, email: str) -> SubscriptionView:
    return SubscriptionView(
        id=row.id,
        contact_id=row.contact_id,
        email=email,
        product_id=row.product_id,
        variant_id=row.variant_id,
        state=row.state,
        reason=row.reason,
        source=row.source,
        created_at=row.created_at,
        ended_at=row.ended_at,
        enrolment_id=row.enrolment_id,
    )
