"""Contacts: upsert by email, read, list, erase."""

from __future__ import annotations

import functools
import operator
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from marketing.bus.v1 import bus_pb2
from marketing_runtime.kinds import CONTACT_TEXT_FIELDS
from marketing_runtime.money import to_money
from marketing_runtime.timestamps import to_timestamp
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Row,
    Select,
    String,
    Uuid,
    any_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.common.pagination import KeyKind, PageTokens, Paging, read_page
from service.common.sql import email_key_sql
from service.deliveries import outbox
from service.errors import (
    AlreadyExistsError,
    FieldViolation,
    InvalidArgumentError,
    NotFoundError,
    Violations,
)
from service.flows import triggers as flow_triggers
from service.reports import attribution, figures
from service.segments import membership
from service.storage.database import Database
from service.storage.models import (
    Contact,
    Engagement,
    ErasureLog,
    EventLog,
    SegmentMembership,
    Suppression,
)

CONTACT_NAME_PREFIX = "contacts/"
NEWSLETTER_SEGMENT = "newsletter"


@dataclass(frozen=True)
class Money:
    currency_code: str
    units: int
    nanos: int


@dataclass(frozen=True)
class ContactFields:
    """What a caller may set. None means "leave as stored"."""

    email: str
    user_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    registration_time: datetime | None = None
    loyalty_tier: str | None = None
    lifetime_value: Money | None = None
    order_count: int | None = None
    last_purchase_time: datetime | None = None
    location: str | None = None
    language: str | None = None
    timezone: str | None = None
    # Merged key by key; a key whose value is null is removed.
    custom_properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContactView:
    """A stored contact as callers see it, with the facts kept beside it."""

    id: uuid.UUID
    email: str
    user_id: str | None
    external_id: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    registration_time: datetime | None
    loyalty_tier: str | None
    lifetime_value: Decimal | None
    lifetime_value_currency: str | None
    order_count: int | None
    last_purchase_time: datetime | None
    location: str | None
    language: str | None
    timezone: str | None
    custom_properties: dict[str, Any]
    email_opt_in: bool
    sms_opt_in: bool
    push_opt_in: bool
    last_sync_at: datetime | None
    created_at: datetime
    updated_at: datetime
    suppressed: bool
    newsletter_member: bool


# The columns a ContactView copies from its row (the rest it is told).
_VIEW_COLUMNS = tuple(
    f.name for f in fields(ContactView) if f.name not in ("suppressed", "newsletter_member")
)


# Read in one call per row (a full sync makes views by the thousand).
_view_values = operator.attrgetter(*_VIEW_COLUMNS)


@dataclass(frozen=True)
class ContactPage:
    contacts: list[ContactView]
    next_page_token: str


def contact_name(contact_id: uuid.UUID) -> str:
    return f"{CONTACT_NAME_PREFIX}{contact_id}"


def parse_contact_name(v: Violations, field_path: str, name: str) -> uuid.UUID | None:
    if not name:
        v.add(field_path, "REQUIRED", "a contact name (contacts/{id}) is required")
        return None
    try:
        if name.startswith(CONTACT_NAME_PREFIX):
            return uuid.UUID(name[len(CONTACT_NAME_PREFIX) :])
    except ValueError:
        pass
    v.add(field_path, "INVALID_NAME", "must look like contacts/{uuid}")
    return None


# The text fields a caller sets, each stored in the column of its name (the
# email is checked as an address, its length with it).
_TEXT_COLUMNS = tuple(
    f.name
    for f in fields(ContactFields)
    if f.name != "email" and isinstance(getattr(Contact, f.name).type, String)
)
# Klaviyo refuses a profile-import body over 100 KiB with 413. The body holds
# the fields `_profile_json_size` measures (under other names, without contact_id) in
# an envelope of under 100 bytes; this leaves a margin for both.
MAX_PROFILE_BYTES = 100 * 1024 - 1024


def validate_contact(
    f: ContactFields, *, now: datetime, skew: timedelta, prefix: str = "contact."
) -> tuple[Violations, Decimal | None]:
    v = Violations()
    check.check_email(v, f"{prefix}email", f.email)
    for name in _TEXT_COLUMNS:  # each fits its column, no NUL
        check.check_text(v, f"{prefix}{name}", getattr(f, name), getattr(Contact, name))
    check.check_phone(v, f"{prefix}phone", f.phone)
    check.check_language(v, f"{prefix}language", f.language)
    check.check_timezone(v, f"{prefix}timezone", f.timezone)
    check.check_not_future(v, f"{prefix}registration_time", f.registration_time, now, skew)
    check.check_not_future(v, f"{prefix}last_purchase_time", f.last_purchase_time, now, skew)
    if f.order_count is not None and f.order_count < 0:
        v.add(f"{prefix}order_count", "OUT_OF_RANGE", "must not be negative")
    check.check_properties(v, f"{prefix}custom_properties", f.custom_properties)
    amount = None
    if f.lifetime_value is not None:
        m = f.lifetime_value
        amount = check.money_amount(
            v, f"{prefix}lifetime_value", m.currency_code, m.units, m.nanos, allow_negative=False
        )
    return v, amount


# Columns copied as they are from ContactFields when the caller set them.
_PLAIN_COLUMNS = tuple(
    f.name
    for f in fields(ContactFields)
    if f.name not in ("email", "lifetime_value", "custom_properties")
)


def _changes(row: Contact | None, f: ContactFields, amount: Decimal | None) -> dict[str, Any]:
    """The column values this upsert sets that differ from what is stored."""
    wanted: dict[str, Any] = {c: getattr(f, c) for c in _PLAIN_COLUMNS if getattr(f, c) is not None}
    if f.lifetime_value is not None:
        wanted["lifetime_value"] = amount
        wanted["lifetime_value_currency"] = f.lifetime_value.currency_code
    if f.custom_properties:
        merged = dict(row.custom_properties if row else {})
        for key, value in f.custom_properties.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        wanted["custom_properties"] = merged
    if row is None:
        return wanted
    return {k: val for k, val in wanted.items() if getattr(row, k) != val}


async def upsert_contact(
    db: Database, f: ContactFields, *, now: datetime, skew: timedelta
) -> tuple[ContactView, bool]:
    """Create or update the contact keyed by email. Returns (contact, created).
    An upsert that changes nothing writes nothing, not even an outbox row."""
    v, amount = validate_contact(f, now=now, skew=skew)
    v.raise_if_any()
    email = check.normalize_email(f.email)
    async with db.transaction() as session:
        locked = await _lock_by_email(session, email)
        row = None if locked is None else locked.row
        if row is None and not (f.first_name or "").strip():
            v.add("contact.first_name", "REQUIRED", "a new contact needs a first name")
            v.raise_if_any()
        created = False
        if row is None:
            # A user_id taken meanwhile by another new contact fails this
            # insert as a unique violation, which storage reports as taken.
            row = await _insert_contact(session, email, _changes(None, f, amount), now)
            created = row is not None
        if row is None:  # a concurrent call created it first: update that one
            locked = await _lock_by_email(session, email)
            assert locked is not None
            row = locked.row
        # Only now is it known which contact is ours (one created a moment
        # ago by a concurrent call for the same email counts as ours).
        await _ensure_user_id_free(session, f.user_id, row.id)
        changes = {} if created else _changes(row, f, amount)
        # A registration: a new contact, or a registration time set at last.
        registered = created or ("registration_time" in changes and row.registration_time is None)
        old_phone = row.phone
        if created or changes:
            for column, value in changes.items():
                setattr(row, column, value)
            _check_profile_size(row)  # raising rolls the transaction back
            row.updated_at = now
            await session.flush()
            await outbox.enqueue(
                session,
                contact_key=check.email_key(email),
                kind=bus_pb2.KIND_CONTACT_UPSERTED,
                payload=contact_payload(row),
                now=now,
            )
            await membership.mark_changed(session, [row.id], now)
        if "phone" in changes and old_phone is not None and row.sms_opt_in:
            # SMS consent is for a number: it lapses with it. Imported here: consent
            # builds on contacts, not the other way round.
            from service.consent.rules import lapse_sms_consent

            await lapse_sms_consent(session, row, old_phone, now)
        if locked is None:  # created: what is kept beside it is read now
            view = (await contact_views(session, [row]))[0]
        else:
            # An upsert changes neither suppression nor newsletter membership:
            # as read with the lock.
            view = _view(row, locked.suppressed, locked.newsletter_member)
        await flow_triggers.on_contact_saved(
            session,
            row,
            registered=registered,
            purchase_time_changed="last_purchase_time" in changes
            or (created and row.last_purchase_time is not None),
            suppressed=view.suppressed,
            now=now,
        )
        return view, created


def _check_profile_size(row: Contact) -> None:
    """The merged contact still fits the provider's profile limit: custom
    properties accumulate over upserts, so each request alone cannot tell."""
    size = _profile_json_size(row)
    if size > MAX_PROFILE_BYTES:
        raise InvalidArgumentError(
            [
                FieldViolation(
                    "contact.custom_properties",
                    "PROFILE_TOO_LARGE",
                    f"the contact would be {size:,} bytes as JSON; the provider takes "
                    f"{MAX_PROFILE_BYTES:,}",
                )
            ]
        )


@dataclass(frozen=True)
class _Locked:
    row: Contact
    suppressed: bool
    newsletter_member: bool


async def get_or_create_by_email(
    session: AsyncSession, email: str, now: datetime
) -> tuple[Contact, bool]:
    """The contact with this (normalised) email, locked, created bare (no
    name) when there is none, for calls that take an address alone
    (SubscribeNewsletter, SubscribeBackInStock); and whether it was created."""
    created = await session.scalar(
        pg_insert(Contact)
        .values(id=uuid.uuid4(), email=email, created_at=now, updated_at=now, custom_properties={})
        .on_conflict_do_nothing(index_elements=[Contact.email])
        .returning(Contact.id)
    )
    contact = await session.scalar(select(Contact).where(Contact.email == email).with_for_update())
    assert contact is not None
    return contact, created is not None


async def _lock_by_email(session: AsyncSession, email: str) -> _Locked | None:
    """The contact's row, locked, with what is kept beside it: one statement
    where the row and `contact_views` took three."""
    suppressed, member = _fact_columns()
    query = select(Contact, suppressed, member).where(Contact.email == email)
    found = (await session.execute(query.with_for_update(of=Contact, key_share=True))).one_or_none()
    return None if found is None else _Locked(found[0], bool(found[1]), bool(found[2]))


async def _insert_contact(
    session: AsyncSession, email: str, changes: dict[str, Any], now: datetime
) -> Contact | None:
    values = {"registration_time": now, **changes}
    stmt = (
        pg_insert(Contact)
        .values(id=uuid.uuid4(), email=email, created_at=now, updated_at=now, **values)
        .on_conflict_do_nothing(index_elements=[Contact.email])
        .returning(Contact.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    return None if new_id is None else await session.get(Contact, new_id)


async def _ensure_user_id_free(
    session: AsyncSession, user_id: str | None, own_id: uuid.UUID | None
) -> None:
    if user_id is None:
        return
    holder = await session.scalar(select(Contact.id).where(Contact.user_id == user_id))
    if holder is not None and holder != own_id:
        raise AlreadyExistsError(
            field="contact.user_id", description=f"user_id {user_id!r} belongs to another contact"
        )


async def get_contact(
    db: Database, *, name: str | None = None, email: str | None = None
) -> ContactView:
    async with db.snapshot() as session:
        row = await find_contact(session, name=name, email=email)
        return (await contact_views(session, [row]))[0]


async def find_contact(
    session: AsyncSession, *, name: str | None = None, email: str | None = None
) -> Contact:
    """The contact a request names by `name` (`contacts/{id}`) or by `email`, the
    request fields of those names; NotFoundError when there is none."""
    v = Violations()
    if name is not None:
        contact_id = parse_contact_name(v, "name", name)
        v.raise_if_any()
        row = await session.get(Contact, contact_id)
        missing = name
    elif email is None:
        raise InvalidArgumentError(
            [FieldViolation("name", "REQUIRED", "set the contact's name or its email")]
        )
    else:
        check.check_email(v, "email", email)
        v.raise_if_any()
        missing = check.normalize_email(email)
        row = await session.scalar(select(Contact).where(Contact.email == missing))
    if row is None:
        raise NotFoundError(resource_type="contact", resource_name=missing)
    return row


# In creation order; created_at ties (one transaction) are broken by id.
CONTACT_PAGES = Paging(scope="contacts", key=(KeyKind.TIME, KeyKind.UUID))
CONTACT_ORDER = (Contact.created_at, Contact.id)


async def list_contacts(
    db: Database, tokens: PageTokens, *, page_size: int, page_token: str
) -> ContactPage:
    v = Violations()
    page = tokens.request(v, CONTACT_PAGES, page_size=page_size, page_token=page_token)
    v.raise_if_any()
    async with db.snapshot() as session:
        rows, token = await read_page(
            session, tokens, CONTACT_PAGES, page, select(Contact), CONTACT_ORDER
        )
        return ContactPage(await contact_views(session, rows), token)


async def delete_contact(db: Database, *, name: str, now: datetime) -> None:
    """Erase a person: their rows go, pending work for them is dropped, and an
    erasure request for the provider is queued behind anything in flight."""
    v = Violations()
    contact_id = parse_contact_name(v, "name", name)
    v.raise_if_any()
    assert contact_id is not None  # None only with a violation, raised above
    await db.retried(functools.partial(_erase, contact_id=contact_id, name=name, now=now))


# How long a try of erasure waits for its contact row's lock while it holds the
# person's other rows (which the relay and the result recorder may be waiting
# for); past it the try is aborted and run again (Database.retried).
CONTACT_LOCK_WAIT = "2s"
_ANY_LOCK_WAIT = text("SET LOCAL lock_timeout = DEFAULT")


async def _erase(session: AsyncSession, *, contact_id: uuid.UUID, name: str, now: datetime) -> None:
    email = await session.scalar(select(Contact.email).where(Contact.id == contact_id))
    if email is None:
        raise NotFoundError(resource_type="contact", resource_name=name)
    # A person's rows before their contact row: the order the result recorder
    # takes them in (event log, outbox, then the contact it marks synced).
    # Locking the contact first deadlocked with a recorder settling their
    # delivery at that moment.
    await _forget_person(session, contact_id, email)
    row = await _lock_contact(session, contact_id)
    if row is None:
        # Erased meanwhile by another call: rolled back, this try's first pass
        # gives back what it took of theirs (their erasure request).
        raise NotFoundError(resource_type="contact", resource_name=name)
    # Again under the lock: what the contact's writers committed for them
    # between the first pass and the lock (an event logged, a change queued).
    await _forget_person(session, contact_id, email)
    await session.delete(row)
    key = check.email_key(email)
    await session.execute(
        insert(ErasureLog).values(email_sha256=key, contact_id=row.id, erased_at=now)
    )
    payload = bus_pb2.ContactErased(email=email, external_id=row.external_id)
    await outbox.enqueue(
        session, contact_key=key, kind=bus_pb2.KIND_CONTACT_ERASED, payload=payload, now=now
    )


async def _lock_contact(session: AsyncSession, contact_id: uuid.UUID) -> Contact | None:
    """The contact row, locked; waiting for it at most CONTACT_LOCK_WAIT."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{CONTACT_LOCK_WAIT}'"))
    row = await session.get(Contact, contact_id, with_for_update=True)
    await session.execute(_ANY_LOCK_WAIT)  # the session's own again (none is set)
    return row


async def _forget_person(session: AsyncSession, contact_id: uuid.UUID, email: str) -> None:
    """Everything kept about a person but their contact row (and what cascades
    from it) goes, or is kept without who they were."""
    key = check.email_key(email)
    await attribution.forget(session, key)
    await session.execute(
        delete(EventLog).where(or_(EventLog.contact_id == contact_id, EventLog.contact_key == key))
    )
    await outbox.forget_person(session, key, email)
    await figures.forget_person(session, key)
    # What they did with our messages stays counted, without who did it.
    await session.execute(
        update(Engagement)
        .where(or_(Engagement.contact_id == contact_id, Engagement.email_sha256 == key))
        .values(contact_id=None, email_sha256=None, url="", detail="")
    )


_KEYS = ARRAY(String)
_IDS = ARRAY(Uuid)


@dataclass(frozen=True)
class ContactFacts:
    """What is kept beside some contacts' rows: which are suppressed (by email
    key) and which are newsletter members."""

    keys: dict[uuid.UUID, str]  # contact id -> email key
    suppressed_keys: set[str]
    members: set[uuid.UUID]

    def suppressed(self, contact_id: uuid.UUID) -> bool:
        return self.keys[contact_id] in self.suppressed_keys

    def newsletter_member(self, contact_id: uuid.UUID) -> bool:
        return contact_id in self.members


async def contact_facts(
    session: AsyncSession, rows: Sequence[Contact] | Sequence[Row[Any]]
) -> ContactFacts:
    """Suppression and newsletter membership of `rows`: two queries for any
    number of rows."""
    keys = {row.id: check.email_key(row.email) for row in rows}
    # Each list bound as one array parameter: an IN list of a thousand values
    # costs more to compile than the query takes to run.
    suppressed = set(
        await session.scalars(
            select(Suppression.email_sha256).where(
                Suppression.email_sha256 == any_(bindparam("keys", list(keys.values()), _KEYS))
            )
        )
    )
    members = set(
        await session.scalars(
            select(SegmentMembership.contact_id).where(
                SegmentMembership.contact_id == any_(bindparam("ids", list(keys), _IDS)),
                SegmentMembership.segment == NEWSLETTER_SEGMENT,
            )
        )
    )
    return ContactFacts(keys, suppressed, members)


def select_contacts_with_facts() -> Select[Any]:
    """Every column of contacts and their `contact_facts` as two more,
    `suppressed` and `newsletter_member` (a full sync reads them with the
    rows, in one statement: a query per fact and chunk cost more than the
    rows did). Each fact is a subquery of one row per contact: written as
    EXISTS or as an outer join, the planner hashed or merged every newsletter
    member for each chunk of a thousand."""
    return select(*Contact.__table__.columns, *_fact_columns())


def _fact_columns() -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """`suppressed` and `newsletter_member` of the contact row in the query."""
    suppressed = _fact(Suppression.email_sha256 == email_key_sql(Contact.email))
    member = _fact(
        SegmentMembership.contact_id == Contact.id,
        SegmentMembership.segment == NEWSLETTER_SEGMENT,
    )
    return suppressed.label("suppressed"), member.label("newsletter_member")


def _fact(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    found = select(true()).where(*conditions).limit(1).scalar_subquery()
    return func.coalesce(found, false())


async def contact_views(
    session: AsyncSession, rows: Sequence[Contact] | Sequence[Row[Any]]
) -> list[ContactView]:
    """Attach suppression and newsletter membership (`contact_facts`) to ORM
    rows, or plain rows of the contact's columns."""
    facts = await contact_facts(session, rows)
    return [_view(row, facts.suppressed(row.id), facts.newsletter_member(row.id)) for row in rows]


def _view(row: Contact | Row[Any], suppressed: bool, newsletter_member: bool) -> ContactView:
    return ContactView(
        **dict(zip(_VIEW_COLUMNS, _view_values(row), strict=True)),
        suppressed=suppressed,
        newsletter_member=newsletter_member,
    )


def contact_payload(row: Contact | ContactView) -> bus_pb2.ContactUpserted:
    """The provider-neutral snapshot the dispatcher syncs to the provider."""
    return fill_contact_payload(bus_pb2.ContactUpserted(), row)


def fill_contact_payload(
    message: bus_pb2.ContactUpserted, row: Contact | ContactView | Row[Any]
) -> bus_pb2.ContactUpserted:
    """`contact_payload` written into `message` (an empty one), which a full
    sync takes inside its chunk: no copy of a thousand profiles a chunk.
    `row` may also be a plain row of the contact's columns."""
    message.contact_id = str(row.id)
    message.email = row.email
    message.custom_properties_json = orjson.dumps(row.custom_properties or {})
    for name in CONTACT_TEXT_FIELDS:
        value = getattr(row, name)
        if value is not None:
            setattr(message, name, value)
    if row.order_count is not None:
        message.order_count = row.order_count
    if row.registration_time is not None:
        message.registration_time.CopyFrom(to_timestamp(row.registration_time))
    if row.last_purchase_time is not None:
        message.last_purchase_time.CopyFrom(to_timestamp(row.last_purchase_time))
    if row.lifetime_value is not None:
        message.lifetime_value.CopyFrom(
            to_money(row.lifetime_value, row.lifetime_value_currency or "")
        )
    return message


def _profile_json_size(row: Contact) -> int:
    """The size of the profile as JSON, which is what the provider's limit is
    about: its fields, under their names, and the custom properties."""
    values = {name: getattr(row, name) for name in CONTACT_TEXT_FIELDS}
    return check.encoded_size(
        {
            "contact_id": str(row.id),
            "email": row.email,
            **values,
            "registration_time": _iso(row.registration_time),
            "lifetime_value": None if row.lifetime_value is None else str(row.lifetime_value),
            "lifetime_value_currency": row.lifetime_value_currency,
            "order_count": row.order_count,
            "last_purchase_time": _iso(row.last_purchase_time),
            "custom_properties": row.custom_properties,
        }
    )


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()
