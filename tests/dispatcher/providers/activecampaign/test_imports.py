"""Bulk import and its status against the ActiveCampaign sandbox (250 contacts a call; the
rate-limit answer is a 400 and retryable; validation failures name the contacts)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from dispatcher.providers.activecampaign.client import ActiveCampaignClient
from dispatcher.providers.activecampaign.imports import SKIPPED
from dispatcher.providers.base import ImportContact, ImportFailure, ImportStatus, Profile
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError
from dispatcher.sandbox.activecampaign import (
    ActiveCampaignSandbox,
    start_activecampaign_sandbox,
)
from tests.dispatcher.helpers import EpochClock
from tests.dispatcher.providers.activecampaign.conftest import (
    ACTID,
    API_KEY,
    EVENT_KEY,
    client_on,
    with_client,
)
from tests.dispatcher.providers.activecampaign.test_contacts import field_ids


def people(*emails: str) -> list[ImportContact]:
    return [
        ImportContact(Profile(email, first_name=f"P{i}", properties={"tier": "gold"}))
        for i, email in enumerate(emails)
    ]


@pytest.fixture
def clock() -> EpochClock:
    return EpochClock(1_800_000_000.0)


@pytest.fixture
def slow_imports(clock: EpochClock) -> Iterator[ActiveCampaignSandbox]:
    """Imports complete 10 s after they are queued, on a clock the test moves."""
    with start_activecampaign_sandbox(
        api_key=API_KEY,
        tracking_actid=ACTID,
        tracking_key=EVENT_KEY,
        rate_limits=False,
        import_delay_s=10.0,
        clock=clock,
    ) as running:
        yield running


def test_an_import_is_queued_then_completed_with_its_failures(
    slow_imports: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    async def run() -> tuple[ImportStatus, ImportStatus]:
        async with client_on(slow_imports) as client:
            batch = await client.start_import(people("a@example.com", "not-an-address", "b@x.io"))
            queued = await client.import_status(batch)
            clock.now += 10
            return queued, await client.import_status(batch)

    queued, completed = asyncio.run(run())

    assert not queued.done
    assert queued.total == 3
    assert completed.done
    assert (completed.total, completed.completed, completed.failed) == (3, 2, 1)
    assert completed.failures == (
        ImportFailure("not-an-address", "refused by ActiveCampaign's import"),
    )
    tier = field_ids(slow_imports)["tier"]
    assert slow_imports.contacts("b@x.io")[0]["fields"] == {tier: "gold"}
    body = slow_imports.requests("/api/3/import/bulk_import")[0]["body"]
    assert body["exclude_automations"] is True
    assert body["contacts"][0] == {
        "email": "a@example.com",
        "first_name": "P0",
        "fields": [{"id": int(tier), "value": "gold"}],
    }


def test_people_the_import_skips_are_named_refused_one_by_one(
    slow_imports: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    """An address on the exclusion list is named neither a success nor a failure: the
    client reads the successes' emails and reports the rest skipped, so that a sync
    counts them failed instead of losing the whole batch."""
    slow_imports.exclude("Skipped@Example.com")

    async def run() -> ImportStatus:
        async with client_on(slow_imports) as client:
            batch = await client.start_import(
                people("a@example.com", "Skipped@Example.com", "not-an-address", "b@x.io")
            )
            clock.now += 10
            return await client.import_status(batch)

    status = asyncio.run(run())

    assert status.done
    assert (status.total, status.completed, status.failed) == (4, 2, 2)
    assert set(status.failures) == {
        ImportFailure("not-an-address", "refused by ActiveCampaign's import"),
        ImportFailure("Skipped@Example.com", SKIPPED),
    }
    assert slow_imports.contacts("skipped@example.com") == []
    [lookup] = slow_imports.requests("/api/3/contacts")
    assert len(parse_qs(lookup["query"])["ids[]"]) == 2, "the two successes, in one request"


def test_a_complete_import_reads_nothing_more(
    slow_imports: ActiveCampaignSandbox, clock: EpochClock
) -> None:
    async def run() -> ImportStatus:
        async with client_on(slow_imports) as client:
            batch = await client.start_import(people("a@example.com", "b@x.io"))
            clock.now += 10
            return await client.import_status(batch)

    assert asyncio.run(run()).failed == 0
    assert slow_imports.requests("/api/3/contacts") == []


def test_a_refused_import_names_the_contacts(ac: ActiveCampaignSandbox) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        with_client(ac, lambda c: c.start_import(people("a@example.com", " ", "b@example.com")))

    assert caught.value.status == 400
    assert caught.value.item_indexes == (1,)
    assert "'email' is required" in str(caught.value)


def test_the_import_rate_limit_answer_is_retryable(ac: ActiveCampaignSandbox) -> None:
    ac.add_fault(path="/api/3/import/bulk_import", status=400, detail="Rate limit exceeded.")

    with pytest.raises(RetryableProviderError) as caught:
        with_client(ac, lambda c: c.start_import(people("a@example.com", "b@example.com")))

    assert (caught.value.status, caught.value.code) == (400, "rate_limited")
    # It stands for bulk import's own bucket: the gate pauses that one, not the account's 5/s.
    assert [bucket.name for bucket in caught.value.buckets] == ["bulk_import"]


def test_more_than_250_contacts_is_a_caller_bug(ac: ActiveCampaignSandbox) -> None:
    many = people(*(f"p{i}@example.com" for i in range(251)))

    with pytest.raises(ValueError, match="250"):
        with_client(ac, lambda c: c.start_import(many))
    assert ac.requests() == []


def test_a_body_over_the_byte_limit_is_refused_before_it_is_sent(
    ac: ActiveCampaignSandbox,
) -> None:
    big = [
        ImportContact(Profile(f"p{i}@example.com", properties={"bio": "x" * 2_000}))
        for i in range(200)
    ]

    with pytest.raises(PermanentProviderError) as caught:
        with_client(ac, lambda c: c.start_import(big))

    assert (caught.value.code, caught.value.item_indexes) == ("too_large", ())
    assert ac.requests("/api/3/import/bulk_import") == []


def test_an_unknown_batch_is_permanent(ac: ActiveCampaignSandbox) -> None:
    async def status(client: ActiveCampaignClient) -> ImportStatus:
        return await client.import_status("no-such-batch")

    with pytest.raises(PermanentProviderError):
        with_client(ac, status)
