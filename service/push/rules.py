"""Push permission: registering a device (RegisterPushToken) records push consent
and gives the provider the token; revoking it (RevokePushPermission, or a push
consent withdrawn any other way) deletes every device of the person at once,
here and at the provider (Properties 24, 25: only people with permission and a
device are in a push audience, see segments.audiences)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from marketing_runtime.clock import Clock
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.common import validation as check
from service.consent.rules import ConsentInput, ConsentType, ConsentView, record_locked, view_of
from service.contacts.rules import contact_name, parse_contact_name
from service.errors import FailedPreconditionError, NotFoundError, Violations
from service.push import tokens
from service.push.tokens import PLATFORMS, VENDORS, TokenView, token_id
from service.storage.database import Database
from service.storage.models import Consent, Contact


@dataclass(frozen=True)
class Device:
    token: str
    platform: str  # "ios" / "android"; "" when the caller left it unspecified
    vendor: str  # "apns" / "fcm"; "" when unspecified


@dataclass(frozen=True)
class Registered:
    token: TokenView
    consent: ConsentView | None  # the push grant recorded now, None when it was on file


@dataclass(frozen=True)
class Revoked:
    changed: bool
    deleted_tokens: int


def push_token_name(t: TokenView) -> str:
    return f"{contact_name(t.contact_id)}/pushTokens/{token_id(t.token)}"


def _check_device(v: Violations, d: Device) -> None:
    field = "push_token.token"
    if not d.token:
        v.add(field, "REQUIRED", "the device token from APNs or FCM is required")
    elif len(d.token) > tokens.MAX_TOKEN_LENGTH:
        v.add(field, "TOO_LONG", f"at most {tokens.MAX_TOKEN_LENGTH} characters")
    elif not d.token.isprintable() or any(c.isspace() for c in d.token):
        v.add(field, "INVALID_TOKEN", "a token is printable text without spaces")
    if d.platform not in PLATFORMS:
        v.add("push_token.platform", "REQUIRED", "the platform (iOS or Android) is required")
    if d.vendor not in VENDORS:
        v.add("push_token.vendor", "REQUIRED", "the vendor (APNs or FCM) is required")


def _check_source(v: Violations, source: str) -> None:
    check.check_required(v, "source", source)
    check.check_text(v, "source", source, Consent.source)


async def register(
    db: Database,
    *,
    parent: str,
    device: Device,
    source: str,
    ip_address: str = "",
    user_agent: str = "",
    permission_granted: bool = False,
    clock: Clock,
) -> Registered:
    v = Violations()
    contact_id = parse_contact_name(v, "parent", parent)
    _check_device(v, device)
    _check_source(v, source)
    check.check_ip(v, "ip_address", ip_address)
    check.check_text(v, "user_agent", user_agent, Consent.user_agent)
    v.raise_if_any()
    assert contact_id is not None
    async with db.transaction() as session:
        contact = await _locked(session, contact_id, parent)
        now = clock()
        grants = not contact.push_opt_in
        if grants and not permission_granted and await _decided_before(session, contact):
            raise FailedPreconditionError(
                reason="PUSH_CONSENT_WITHDRAWN",
                subject=parent,
                description="the person withdrew push consent: register with "
                "permission_granted once they grant it again",
            )
        token = await tokens.register(
            session, contact, device.token, device.platform, device.vendor, now
        )
        consent = None
        if grants:
            grant = ConsentInput(ConsentType.PUSH, True, source.strip(), ip_address, user_agent)
            consent = view_of(await record_locked(session, contact, grant, now))
        return Registered(token, consent)


async def _decided_before(session: AsyncSession, contact: Contact) -> bool:
    """Whether any push consent decision of the person is on record."""
    found = await session.scalar(
        select(Consent.id)
        .where(Consent.contact_id == contact.id, Consent.type == ConsentType.PUSH)
        .limit(1)
    )
    return found is not None


async def revoke(db: Database, *, parent: str, source: str, clock: Clock) -> Revoked:
    v = Violations()
    contact_id = parse_contact_name(v, "parent", parent)
    _check_source(v, source)
    v.raise_if_any()
    assert contact_id is not None
    async with db.transaction() as session:
        contact = await _locked(session, contact_id, parent)
        now = clock()
        held = len(await tokens.tokens_of(session, contact.id))
        if contact.push_opt_in:  # the withdrawal deletes the devices (consent.rules)
            withdrawal = ConsentInput(ConsentType.PUSH, False, source.strip())
            await record_locked(session, contact, withdrawal, now)
            return Revoked(True, held)
        deleted = await tokens.delete_all(session, contact, now)
        return Revoked(deleted > 0, deleted)


async def list_tokens(db: Database, *, parent: str) -> list[TokenView]:
    v = Violations()
    contact_id = parse_contact_name(v, "parent", parent)
    v.raise_if_any()
    assert contact_id is not None
    async with db.transaction() as session:
        if await session.get(Contact, contact_id) is None:
            raise NotFoundError(resource_type="contact", resource_name=parent)
        return await tokens.tokens_of(session, contact_id)


async def _locked(session: AsyncSession, contact_id: uuid.UUID, parent: str) -> Contact:
    contact = await session.get(Contact, contact_id, with_for_update=True)
    if contact is None:
        raise NotFoundError(resource_type="contact", resource_name=parent)
    return contact
