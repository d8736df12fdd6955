"""The dispatcher keeps copies of a few bus constants (it imports nothing new
from the service); they must stay equal to the service's. Which provider the
settings choose, and when it is its sandbox."""

from __future__ import annotations

import asyncio

import pytest
from marketing_runtime import topology
from pydantic import ValidationError

from dispatcher.budget.log import DEFAULT_PROVIDER_SKEW_S
from dispatcher.main import build_provider
from dispatcher.providers.activecampaign import ActiveCampaignClient
from dispatcher.providers.base import Provider
from dispatcher.providers.klaviyo.client import KlaviyoClient
from dispatcher.settings import CONSUMER_ACK_WAIT_S, DispatcherSettings


def test_the_consumer_ack_wait_is_the_one_the_topology_declares() -> None:
    assert CONSUMER_ACK_WAIT_S == topology.ACK_WAIT_S
    assert DispatcherSettings.model_fields["event_ack_wait_s"].default == topology.ACK_WAIT_S


# --- which provider, and its sandbox ------------------------------------------------------

AC_SETTINGS = {
    "ACTIVECAMPAIGN_URL": "https://acme.api-us1.com",
    "ACTIVECAMPAIGN_API_KEY": "ac-key",
    "ACTIVECAMPAIGN_EVENT_ACCOUNT_ID": "1234",
    "ACTIVECAMPAIGN_EVENT_KEY": "event-key",
}


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> DispatcherSettings:
    for name in (*AC_SETTINGS, "KLAVIYO_API_KEY", "MARKETING_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return DispatcherSettings()


def built(settings: DispatcherSettings) -> Provider:
    """The provider the settings choose (closed again: only its type matters here)."""
    provider = build_provider(settings)
    asyncio.run(provider.aclose())
    return provider


def test_activecampaign_without_credentials_is_its_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, {"MARKETING_PROVIDER": "activecampaign"})

    assert settings.provider_name == "activecampaign"
    assert settings.uses_sandbox
    assert isinstance(built(settings), ActiveCampaignClient)


def test_activecampaign_with_credentials_is_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, {"MARKETING_PROVIDER": "activecampaign", **AC_SETTINGS})

    assert not settings.uses_sandbox
    assert isinstance(built(settings), ActiveCampaignClient)


@pytest.mark.parametrize("left_out", sorted(AC_SETTINGS))
def test_activecampaign_with_some_credentials_names_the_missing_ones(
    monkeypatch: pytest.MonkeyPatch, left_out: str
) -> None:
    env = {name: value for name, value in AC_SETTINGS.items() if name != left_out}

    with pytest.raises(ValidationError) as caught:
        settings_from(monkeypatch, {"MARKETING_PROVIDER": "activecampaign", **env})

    assert left_out in str(caught.value)


@pytest.mark.parametrize(
    ("env", "sandbox"),
    [
        ({}, True),
        ({"MARKETING_PROVIDER": "sandbox"}, True),
        ({"MARKETING_PROVIDER": "klaviyo"}, True),
        ({"MARKETING_PROVIDER": "klaviyo", "KLAVIYO_API_KEY": "pk_1"}, False),
    ],
)
def test_klaviyo_and_its_sandbox(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], sandbox: bool
) -> None:
    settings = settings_from(monkeypatch, env)

    assert settings.provider_name == "klaviyo"
    assert settings.uses_sandbox is sandbox
    assert isinstance(built(settings), KlaviyoClient)


def test_the_endpoint_is_the_accounts_or_the_sandboxes(monkeypatch: pytest.MonkeyPatch) -> None:
    real = settings_from(monkeypatch, {"MARKETING_PROVIDER": "activecampaign", **AC_SETTINGS})
    sandbox = settings_from(
        monkeypatch,
        {"MARKETING_PROVIDER": "activecampaign", "MARKETING_SANDBOX_URL": "http://127.0.0.1:9"},
    )

    assert real.api_endpoint() == ("https://acme.api-us1.com", "ac-key")
    assert real.event_tracking() == ("https://trackcmp.net/event", "1234", "event-key")
    assert sandbox.api_endpoint() == ("http://127.0.0.1:9", "sandbox-key")
    assert sandbox.event_tracking()[0] == "http://127.0.0.1:9/event"


# --- the provider's clock -------------------------------------------------------------------


def test_the_providers_clock_skew_is_klaviyos_unless_stated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MARKETING_BUDGET_PROVIDER_SKEW_S", raising=False)
    assert DispatcherSettings().budget_provider_skew_s == DEFAULT_PROVIDER_SKEW_S
    monkeypatch.setenv("MARKETING_BUDGET_PROVIDER_SKEW_S", "0.005")
    assert DispatcherSettings().budget_provider_skew_s == 0.005


@pytest.mark.parametrize("skew", ["-0.01", "0.25", "1"])
def test_a_skew_no_edge_of_a_second_can_hold_is_refused(
    monkeypatch: pytest.MonkeyPatch, skew: str
) -> None:
    """An edge known within a skew either way must be narrower than half a window."""
    monkeypatch.setenv("MARKETING_BUDGET_PROVIDER_SKEW_S", skew)
    with pytest.raises(ValidationError, match="budget_provider_skew_s"):
        DispatcherSettings()
