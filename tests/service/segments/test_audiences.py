"""Audiences: a segment's members with consent for the channel, never a
suppressed address (nor, for SMS, a number on the SMS suppression list; nor,
for push, someone without a device), streamed in pages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.segments.audiences import audience
from service.storage.database import Database
from service.storage.models import (
    ConsentType,
    Segment,
    SegmentKind,
)
from tests.contact_rows import Facts, insert_contact
from tests.harness import own_database

NOW = datetime(2026, 6, 1, tzinfo=UTC)
people = st.lists(
    st.fixed_dictionaries(
        {
            "email": st.booleans(),
            "sms": st.booleans(),
            "push": st.booleans(),
            "phone": st.booleans(),
            "sms_suppressed": st.booleans(),
            "device": st.booleans(),
            "suppressed": st.booleans(),
            "member": st.booleans(),
        }
    ),
    max_size=12,
)
CHANNELS = st.sampled_from([ConsentType.EMAIL, ConsentType.SMS, ConsentType.PUSH])


@pytest.fixture(scope="module")
def audience_db(database_url: str) -> Iterator[str]:
    with own_database(database_url, "audience") as url:
        yield url


def test_no_suppressed_or_unconsented_contact_is_ever_in_an_audience(audience_db: str) -> None:
    # **Feature: marketing-automation, Property 11: Suppression list respected**
    # **Feature: marketing-automation, Property 21: SMS opt-in validation**
    # **Feature: marketing-automation, Property 24: Push permission required**
    @settings(max_examples=100, deadline=None)
    @given(people, CHANNELS, st.integers(1, 5), st.integers(1, 3))
    def respected(
        drawn: list[dict[str, bool]], channel: ConsentType, page: int, streams: int
    ) -> None:
        asyncio.run(_scenario(audience_db, drawn, channel, page, streams))

    respected()


async def _scenario(
    url: str, drawn: list[dict[str, bool]], channel: ConsentType, page: int, streams: int
) -> None:
    db = Database(url)
    tag = uuid.uuid4().hex[:10]
    segment_id = f"audience-{tag}"
    expected: set[str] = set()
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(Segment).values(
                    id=segment_id,
                    display_name=segment_id,
                    kind=SegmentKind.MANUAL,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            for n, person in enumerate(drawn):
                email = f"p{n}-{tag}@example.com"
                if await _add(session, segment_id, email, person) and _may_receive(person, channel):
                    expected.add(email)
        pages = [b async for b in audience(db, segment_id, channel, page=page, streams=streams)]
        got = [r for batch in pages for r in batch]
        emails = [r.email for r in got]
        assert len(emails) == len(set(emails)), "each recipient once"
        assert set(emails) == expected
        for batch in pages:
            assert 0 < len(batch) <= page
            assert [r.contact_id for r in batch] == sorted(r.contact_id for r in batch)
    finally:
        await db.close()


def _may_receive(person: dict[str, bool], channel: ConsentType) -> bool:
    consented = {
        ConsentType.EMAIL: person["email"],
        ConsentType.SMS: person["sms"] and person["phone"] and not person["sms_suppressed"],
        ConsentType.PUSH: person["push"] and person["device"],
    }[channel]
    return person["member"] and consented and not person["suppressed"]


async def _add(session: AsyncSession, segment_id: str, email: str, person: dict[str, bool]) -> bool:
    facts = Facts(
        email_opt_in=person["email"],
        sms_opt_in=person["sms"],
        push_opt_in=person["push"],
        phone=person["phone"],
        address_suppressed=person["suppressed"],
        number_suppressed=person["sms_suppressed"],
        device=person["device"],
        member_of=segment_id if person["member"] else None,
    )
    await insert_contact(session, email, facts, NOW)
    return person["member"]
