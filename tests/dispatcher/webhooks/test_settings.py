"""The receiver's settings: their environment names, defaults, and the
receiver's configuration made of them."""

from __future__ import annotations

import pytest

from dispatcher.settings import DEFAULT_REPLAY_WINDOW_S, DEFAULT_WEBHOOK_ADDRESS, DispatcherSettings
from dispatcher.webhooks import ReceiverConfig

NAMES = (
    "MARKETING_WEBHOOK_ADDRESS",
    "KLAVIYO_WEBHOOK_SECRET",
    "ACTIVECAMPAIGN_WEBHOOK_SECRET",
    "MARKETING_WEBHOOK_REPLAY_WINDOW_S",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_by_default_the_receiver_listens_on_loopback_and_refuses_everything() -> None:
    settings = DispatcherSettings()
    config = ReceiverConfig.of(settings)

    assert settings.webhook_address == DEFAULT_WEBHOOK_ADDRESS == "127.0.0.1:8091"
    assert (config.klaviyo_secret, config.activecampaign_secret) == ("", "")
    assert config.replay_window_s == DEFAULT_REPLAY_WINDOW_S == 300.0


def test_the_settings_come_from_their_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETING_WEBHOOK_ADDRESS", "")
    monkeypatch.setenv("KLAVIYO_WEBHOOK_SECRET", "k-secret")
    monkeypatch.setenv("ACTIVECAMPAIGN_WEBHOOK_SECRET", "ac-secret")
    monkeypatch.setenv("MARKETING_WEBHOOK_REPLAY_WINDOW_S", "60")

    settings = DispatcherSettings()
    config = ReceiverConfig.of(settings)

    assert settings.webhook_address == ""
    assert (config.klaviyo_secret, config.activecampaign_secret) == ("k-secret", "ac-secret")
    assert config.replay_window_s == 60.0


def test_the_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLAVIYO_WEBHOOK_SECRET", "k-secret")
    monkeypatch.setenv("ACTIVECAMPAIGN_WEBHOOK_SECRET", "ac-secret")
    settings = DispatcherSettings()

    for shown in (repr(settings), repr(ReceiverConfig.of(settings))):
        assert "k-secret" not in shown
        assert "ac-secret" not in shown
