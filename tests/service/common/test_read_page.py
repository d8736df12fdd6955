"""The one page query, against PostgreSQL: paging through a list in either
direction returns every row once, in the list's order, also across ties in
the first key column."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from marketing.v1 import service_pb2 as pb
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from service.common.pagination import KeyKind, PageRequest, PageTokens, Paging, read_page
from service.errors import Violations
from service.storage.models import Consent
from tests.builders import consent, ts, upsert
from tests.harness import ServiceHarness, unique_email, unique_phone

TOKENS = PageTokens(b"read-page-test-key")
TIES = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def contact_id(harness: ServiceHarness) -> uuid.UUID:
    """A contact with seven consent records, five of them at the same time."""
    name = harness.stub.UpsertContact(
        upsert(unique_email("pages"), phone=unique_phone())
    ).contact.name
    for when in [TIES] * 5 + [LATER] * 2:
        record = consent("SMS", consent_time=ts(when))
        harness.stub.RecordConsent(pb.RecordConsentRequest(parent=name, consent=record))
    return uuid.UUID(name.removeprefix("contacts/"))


def every_page(
    harness: ServiceHarness,
    contact_id: uuid.UUID,
    paging: Paging,
    order: tuple[InstrumentedAttribute[Any], ...],
    *,
    descending: bool,
) -> list[list[tuple[Any, ...]]]:
    """Each page's sort keys, following next-page tokens to the end."""

    async def page(token: str) -> tuple[list[tuple[Any, ...]], str]:
        request = TOKENS.request(Violations(), paging, page_size=2, page_token=token)
        query = select(Consent).where(Consent.contact_id == contact_id)
        async with harness.db.transaction() as session:
            rows, next_token = await read_page(
                session, TOKENS, paging, request, query, order, descending=descending
            )
        return [tuple(getattr(row, c.key) for c in order) for row in rows], next_token

    pages, token = [], ""
    while True:
        keys, token = harness.run(page(token))
        pages.append(keys)
        if not token:
            return pages


def test_newest_first_across_ties(harness: ServiceHarness, contact_id: uuid.UUID) -> None:
    paging = Paging(scope="test:newest", key=(KeyKind.TIME, KeyKind.ID))
    order = (Consent.consent_time, Consent.id)
    pages = every_page(harness, contact_id, paging, order, descending=True)
    keys = [key for page in pages for key in page]
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == 7
    assert [when for when, _ in keys] == [LATER] * 2 + [TIES] * 5


def test_one_column_in_ascending_order(harness: ServiceHarness, contact_id: uuid.UUID) -> None:
    paging = Paging(scope="test:by-id", key=(KeyKind.ID,))
    pages = every_page(harness, contact_id, paging, (Consent.id,), descending=False)
    keys = [key for page in pages for key in page]
    assert keys == sorted(keys) and len(set(keys)) == 7


def test_a_full_last_page_has_no_next_token(harness: ServiceHarness, contact_id: uuid.UUID) -> None:
    paging = Paging(scope="test:whole", key=(KeyKind.ID,))

    async def whole(size: int) -> tuple[int, str]:
        request = PageRequest(size=size, after=None)
        query = select(Consent).where(Consent.contact_id == contact_id)
        async with harness.db.transaction() as session:
            rows, token = await read_page(session, TOKENS, paging, request, query, (Consent.id,))
        return len(rows), token

    assert harness.run(whole(7)) == (7, "")
    count, token = harness.run(whole(6))
    assert count == 6 and TOKENS.decode(token, paging) is not None
