"""The budget's account name: one per provider account, never the key itself."""

from __future__ import annotations

from pydantic import SecretStr

from dispatcher.budget import account_id
from dispatcher.main import provider_account
from dispatcher.settings import DispatcherSettings

KEY = "pk_live_0123456789abcdef"


def test_an_account_is_named_by_provider_url_and_key_without_showing_the_key() -> None:
    name = account_id("klaviyo", "https://a.klaviyo.com", KEY)
    assert KEY not in name and "0123456789abcdef" not in name
    assert name == account_id("klaviyo", "https://a.klaviyo.com/", KEY), "one URL, one account"
    others = {
        account_id("klaviyo", "https://a.klaviyo.com", KEY + "x"),
        account_id("klaviyo", "https://other.example", KEY),
        account_id("activecampaign", "https://a.klaviyo.com", KEY),
    }
    assert name not in others and len(others) == 3


def test_replicas_of_one_account_share_a_name_which_a_setting_can_give() -> None:
    def settings(**fields: object) -> DispatcherSettings:
        return DispatcherSettings(
            provider="klaviyo",
            klaviyo_api_key=SecretStr(KEY),
            **fields,  # type: ignore[arg-type]
        )

    assert provider_account(settings()) == provider_account(settings())
    assert provider_account(settings()) == account_id("klaviyo", "https://a.klaviyo.com", KEY)
    assert provider_account(settings(provider_account="shop-eu")) == "shop-eu"
