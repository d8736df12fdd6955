"""`make up` starts the sandbox of the provider chosen, unless that provider has credentials."""

from __future__ import annotations

import pytest

from service.devstack import LOCAL_SANDBOX_SKEW_S, first_call, sandbox_provider, use_local_sandbox


@pytest.mark.parametrize(
    ("env", "sandbox"),
    [
        ({}, "klaviyo"),
        ({"MARKETING_PROVIDER": "sandbox"}, "klaviyo"),
        ({"MARKETING_PROVIDER": "klaviyo"}, "klaviyo"),
        ({"MARKETING_PROVIDER": "klaviyo", "KLAVIYO_API_KEY": "pk_1"}, None),
        ({"MARKETING_PROVIDER": "activecampaign"}, "activecampaign"),
        ({"MARKETING_PROVIDER": "activecampaign", "KLAVIYO_API_KEY": "pk_1"}, "activecampaign"),
        ({"MARKETING_PROVIDER": "activecampaign", "ACTIVECAMPAIGN_API_KEY": "k"}, None),
        ({"MARKETING_PROVIDER": "activecampaign", "ACTIVECAMPAIGN_URL": "https://a"}, None),
    ],
)
def test_the_sandbox_make_up_starts(env: dict[str, str], sandbox: str | None) -> None:
    assert sandbox_provider(env) == sandbox


def test_the_first_call_names_the_sandbox_in_use() -> None:
    env = {"MARKETING_GRPC_ADDRESS": "127.0.0.1:50051", "MARKETING_NATS_URL": "nats://n"}
    env |= {"MARKETING_SANDBOX_URL": "http://127.0.0.1:8090"}

    on_ac = first_call(env | {"MARKETING_PROVIDER": "activecampaign"}, None)
    on_klaviyo = first_call(env | {"MARKETING_PROVIDER": "sandbox"}, None)
    real = first_call(env | {"MARKETING_PROVIDER": "klaviyo", "KLAVIYO_API_KEY": "pk"}, None)

    assert "the ActiveCampaign sandbox at http://127.0.0.1:8090" in on_ac
    assert "the Klaviyo sandbox at http://127.0.0.1:8090" in on_klaviyo
    assert "delivering to Klaviyo." in real


def test_a_local_sandbox_is_counted_on_the_dispatchers_own_clock() -> None:
    """The sandbox on this machine reads the dispatcher's clock: its seconds are taken
    to begin within a rounding of the dispatcher's (not Klaviyo's 50 ms), unless stated."""
    env = {"MARKETING_PROVIDER": "klaviyo"}
    assert use_local_sandbox(env, "klaviyo") == "127.0.0.1:8090"
    assert env == {
        "MARKETING_PROVIDER": "sandbox",
        "MARKETING_SANDBOX_ADDRESS": "127.0.0.1:8090",
        "MARKETING_SANDBOX_URL": "http://127.0.0.1:8090",
        "MARKETING_BUDGET_PROVIDER_SKEW_S": str(LOCAL_SANDBOX_SKEW_S),
    }
    stated = {"MARKETING_BUDGET_PROVIDER_SKEW_S": "0.05", "MARKETING_SANDBOX_ADDRESS": "h:1"}
    assert use_local_sandbox(stated, "activecampaign") == "h:1"
    assert stated["MARKETING_BUDGET_PROVIDER_SKEW_S"] == "0.05"
    assert "MARKETING_PROVIDER" not in stated
