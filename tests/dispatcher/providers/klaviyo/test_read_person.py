"""KlaviyoClient.read_person against the sandbox: the profile, consent, suppression and
newsletter membership a reconcile compares, read over HTTP as Klaviyo answers them."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dispatcher.providers.base import ConsentChange, ConsentState, Profile, ProviderPerson
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.sandbox import Sandbox
from tests.dispatcher.helpers import with_client

LIST = "NEWS01"
PHONE = "+15005550006"


def plant(http: httpx.Client, **profile: object) -> str:
    answer = http.post("/_sandbox/profiles", json=profile)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["data"]["id"])


def test_an_unknown_person_is_none(sandbox: Sandbox) -> None:
    assert with_client(sandbox, lambda c: c.read_person("nobody@example.com", LIST)) is None


def test_profile_fields_and_properties_come_back_as_the_upsert_sent_them(sandbox: Sandbox) -> None:
    sent = Profile(
        email="ada@example.com",
        external_id="user-1",
        phone=PHONE,
        first_name="Ada",
        last_name="Lovelace",
        location="London, UK",
        properties={"loyalty_tier": "gold", "vip": True},
    )

    async def upsert_then_read(client: KlaviyoClient) -> tuple[str, ProviderPerson | None]:
        provider_id = await client.upsert_profile(sent)
        return provider_id, await client.read_person("ada@example.com", None)

    provider_id, person = with_client(sandbox, upsert_then_read)
    assert person is not None
    assert person.provider_id == provider_id
    assert person.profile == sent
    assert person.newsletter_member is None, "no list asked about"
    assert [r["path"] for r in sandbox.requests()][-1] == "/api/profiles"


def test_consent_suppression_and_list_as_the_consent_calls_left_them(sandbox: Sandbox) -> None:
    state = ConsentState(
        ConsentChange("ada@example.com", PHONE, email_marketing=True, sms_marketing=False),
        newsletter_member=True,
        suppressed=False,
    )

    async def apply_then_read(client: KlaviyoClient) -> ProviderPerson | None:
        for call in client.plan_consent([(0, state)], LIST):
            await call.send(call.owners)
        return await client.read_person("ada@example.com", LIST)

    person = with_client(sandbox, apply_then_read)
    assert person is not None
    assert (person.email_marketing, person.sms_marketing) == (True, False)
    assert (person.suppressed, person.newsletter_member) == (False, True)


def test_only_our_own_suppression_counts_as_suppressed(
    sandbox: Sandbox, http: httpx.Client
) -> None:
    plant(
        http,
        email="bounced@example.com",
        consent={"email": "UNSUBSCRIBED"},
        suppression=["UNSUBSCRIBE", "HARD_BOUNCE"],
        lists=["OTHER"],
    )
    plant(http, email="suppressed@example.com", suppression=["USER_SUPPRESSED"])
    bounced = with_client(sandbox, lambda c: c.read_person("bounced@example.com", LIST))
    suppressed = with_client(sandbox, lambda c: c.read_person("suppressed@example.com", LIST))
    assert bounced is not None and suppressed is not None
    assert (bounced.email_marketing, bounced.suppressed, bounced.newsletter_member) == (
        False,
        False,
        False,
    )
    assert suppressed.suppressed
    assert suppressed.email_marketing is False, "NEVER_SUBSCRIBED is no grant"


def test_the_email_is_quoted_in_the_filter(sandbox: Sandbox, http: httpx.Client) -> None:
    plant(http, email='o"brien@example.com', first_name="Pat")
    person = with_client(sandbox, lambda c: c.read_person('o"brien@example.com', None))
    assert person is not None and person.profile.first_name == "Pat"


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, RetryableProviderError), (503, RetryableProviderError), (403, PermanentProviderError)],
)
def test_errors_are_translated_like_every_other_call(
    sandbox: Sandbox, http: httpx.Client, status: int, error: type[Exception]
) -> None:
    http.post(
        "/_sandbox/faults", json={"path": "/api/profiles", "status": status, "retry_after": 2}
    )
    with pytest.raises(error) as raised:
        with_client(sandbox, lambda c: c.read_person("ada@example.com", LIST))
    assert "Klaviyo GET /api/profiles" in str(raised.value)
    if status == 429:
        assert isinstance(raised.value, RetryableProviderError) and raised.value.retry_after == 2


def test_a_network_failure_is_retryable() -> None:
    client_of_nothing = KlaviyoClient("pk_x", base_url="http://127.0.0.1:9", timeout_s=2)

    async def read() -> ProviderPerson | None:
        async with client_of_nothing as client:
            return await client.read_person("ada@example.com", None)

    with pytest.raises(RetryableProviderError):
        asyncio.run(read())
