"""ActiveCampaign's errors as the client translates them, against the sandbox: auth, the
account's rate limit, server errors, its varying error bodies, and writes whose outcome is
unknown (counted)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from dispatcher.providers.activecampaign import TrackingAccount
from dispatcher.providers.activecampaign.client import ActiveCampaignClient
from dispatcher.providers.activecampaign.http import ApiHttp, as_count, as_id, record_id
from dispatcher.providers.base import Profile
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError
from dispatcher.sandbox.activecampaign import (
    ActiveCampaignSandbox,
    start_activecampaign_sandbox,
)
from tests.dispatcher.providers.activecampaign.conftest import (
    ACTID,
    API_KEY,
    EVENT_KEY,
    with_client,
)

ADA = Profile(email="ada@example.com", first_name="Ada")


def unknown_outcomes(operation: str) -> float:
    value = REGISTRY.get_sample_value(
        "marketing_dispatcher_provider_unknown_outcomes_total",
        {"provider": "activecampaign", "operation": operation},
    )
    return value or 0.0


def test_a_wrong_key_is_permanent_and_not_a_miss(ac: ActiveCampaignSandbox) -> None:
    with pytest.raises(PermanentProviderError) as caught:
        with_client(ac, lambda c: c.read_person("ada@example.com", None), api_key="wrong")

    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    assert "Forbidden" in str(caught.value)


def test_the_accounts_rate_limit_is_retryable_with_its_retry_after(
    limited: ActiveCampaignSandbox,
) -> None:
    async def past_the_limit(client: ActiveCampaignClient) -> None:
        for _ in range(6):
            await client.request_erasure("nobody@example.com")  # one GET each

    with pytest.raises(RetryableProviderError) as caught:
        with_client(limited, past_the_limit)

    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert 0 <= caught.value.retry_after <= 1
    assert len(limited.requests()) == 5


@pytest.mark.parametrize("status", [503, 500, 502, 504])
def test_server_errors_are_retryable(ac: ActiveCampaignSandbox, status: int) -> None:
    ac.add_fault(path="/api/3/contacts", status=status, retry_after=2)

    with pytest.raises(RetryableProviderError) as caught:
        with_client(ac, lambda c: c.read_person("ada@example.com", None))

    assert caught.value.status == status


def test_a_server_error_after_a_write_counts_an_unknown_outcome(ac: ActiveCampaignSandbox) -> None:
    before = (unknown_outcomes("upsert_profile"), unknown_outcomes("read_person"))
    ac.add_fault(path="/api/3/contact/sync", status=502)
    ac.add_fault(path="/api/3/contacts", status=502)

    for operation in (
        lambda c: c.upsert_profile(ADA),
        lambda c: c.read_person("ada@example.com", None),
    ):
        with pytest.raises(RetryableProviderError):
            with_client(ac, operation)

    after = (unknown_outcomes("upsert_profile"), unknown_outcomes("read_person"))
    assert after == (before[0] + 1, before[1])  # a read changes nothing: not counted


def test_503_is_not_an_unknown_outcome(ac: ActiveCampaignSandbox) -> None:
    before = unknown_outcomes("upsert_profile")
    ac.add_fault(path="/api/3/contact/sync", status=503)

    with pytest.raises(RetryableProviderError):
        with_client(ac, lambda c: c.upsert_profile(ADA))

    assert unknown_outcomes("upsert_profile") == before


def test_a_timeout_after_sending_a_write_is_retryable_and_counted(
    ac: ActiveCampaignSandbox,
) -> None:
    before = unknown_outcomes("upsert_profile")
    ac.add_fault(path="/api/3/contact/sync", latency_ms=1500)

    with pytest.raises(RetryableProviderError) as caught:
        with_client(ac, lambda c: c.upsert_profile(ADA), timeout_s=0.3)

    assert "ReadTimeout" in str(caught.value)
    assert unknown_outcomes("upsert_profile") == before + 1


def test_a_refused_connection_is_retryable_and_not_counted() -> None:
    with start_activecampaign_sandbox() as gone:
        base_url = gone.base_url
    before = unknown_outcomes("upsert_profile")

    async def upsert() -> str:
        async with ActiveCampaignClient(
            base_url, API_KEY, client_on_tracking(base_url), timeout_s=2
        ) as client:
            return await client.upsert_profile(Profile("ada@example.com"))

    with pytest.raises(RetryableProviderError):
        asyncio.run(upsert())
    assert unknown_outcomes("upsert_profile") == before


def client_on_tracking(base_url: str) -> TrackingAccount:
    return TrackingAccount(ACTID, EVENT_KEY, base_url + "/event")


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        ({"status": 400}, "", "HTTP 400"),
        ({"status": 404, "detail": "No Result found for Thing with id 3"}, "", "No Result"),
    ],
)
def test_every_error_body_shape_reads_as_a_permanent_error(
    ac: ActiveCampaignSandbox, fault: dict[str, object], code: str, words: str
) -> None:
    ac.add_fault(path="/api/3/contact/sync", **fault)

    with pytest.raises(PermanentProviderError) as caught:
        with_client(ac, lambda c: c.upsert_profile(ADA))

    assert caught.value.code == code
    assert words in str(caught.value)


def test_an_errors_list_gives_its_code_and_title(ac: ActiveCampaignSandbox) -> None:
    async def create_twice() -> None:
        api = ApiHttp(ac.base_url, API_KEY, timeout_s=5)
        body = {"field": {"title": "tier", "type": "text"}}
        try:
            for _ in range(2):
                await api.call("POST", "/fields", operation="upsert_profile", body=body)
        finally:
            await api.aclose()

    with pytest.raises(PermanentProviderError) as caught:
        asyncio.run(create_twice())

    assert (caught.value.status, caught.value.code) == (422, "duplicate")
    assert "There is already a field with this title" in str(caught.value)


def test_ids_given_as_numbers_or_strings_are_read_alike() -> None:
    assert as_id(10) == as_id("10") == as_id(" 10 ") == "10"
    assert as_id(None) == as_id(True) == ""
    assert as_count("12") == as_count(12) == 12
    assert as_count("n/a") == 0
    assert record_id({"fields": [{"id": 4}]}, "field") == "4"
    assert record_id({"field": {"id": "5"}}, "field") == "5"
