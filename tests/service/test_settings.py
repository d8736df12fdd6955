"""Settings read from the environment: defaults, overrides and refusals."""

from __future__ import annotations

import pytest
from marketing_runtime.publisher import DEFAULT_GROUP_COMMIT_S

from dispatcher.settings import DispatcherSettings
from service.settings import ServiceSettings


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: nothing from the shell running the tests."""
    for name in (
        "MARKETING_GC_GEN0_THRESHOLD",
        "MARKETING_PUBLISH_GROUP_COMMIT_MS",
        "MARKETING_AUTH",
        "MARKETING_AUTH_FILE",
        "MARKETING_TLS_CERT",
        "MARKETING_TLS_KEY",
        "MARKETING_TLS_CLIENT_CA",
        "MARKETING_PAGE_TOKEN_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MARKETING_DATABASE_URL", "postgresql://x@localhost/y")


def test_gc_threshold_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().gc_gen0_threshold == 20_000
    assert DispatcherSettings().gc_gen0_threshold == 20_000
    monkeypatch.setenv("MARKETING_GC_GEN0_THRESHOLD", "0")
    assert ServiceSettings().gc_gen0_threshold == 0
    assert DispatcherSettings().gc_gen0_threshold == 0
    for refused in ("-1", "2147483648"):  # gc.set_threshold takes a C int
        monkeypatch.setenv("MARKETING_GC_GEN0_THRESHOLD", refused)
        with pytest.raises(ValueError, match="gc_gen0_threshold"):
            ServiceSettings()
        with pytest.raises(ValueError, match="gc_gen0_threshold"):
            DispatcherSettings()


def test_group_commit_window_default_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().publish_group_commit_ms == DEFAULT_GROUP_COMMIT_S * 1000 == 5
    monkeypatch.setenv("MARKETING_PUBLISH_GROUP_COMMIT_MS", "0")
    assert ServiceSettings().publish_group_commit_ms == 0
    monkeypatch.setenv("MARKETING_PUBLISH_GROUP_COMMIT_MS", "250")
    with pytest.raises(ValueError, match="publish_group_commit_ms"):
        ServiceSettings()


def test_authentication_is_required_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = ServiceSettings()
    assert (settings.auth, settings.auth_file) == ("required", None)
    monkeypatch.setenv("MARKETING_AUTH", "off")  # only "required" or "disabled"
    with pytest.raises(ValueError):
        ServiceSettings()


def test_tls_files_come_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETING_TLS_CLIENT_CA", "/ca.pem")
    with pytest.raises(ValueError, match="MARKETING_TLS_CLIENT_CA needs"):
        ServiceSettings()
    monkeypatch.setenv("MARKETING_TLS_CERT", "/cert.pem")
    with pytest.raises(ValueError, match="go together"):
        ServiceSettings()
    monkeypatch.setenv("MARKETING_TLS_KEY", "/key.pem")
    assert str(ServiceSettings().tls_client_ca) == "/ca.pem"


def test_page_token_key_is_random_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = ServiceSettings().page_token_key, ServiceSettings().page_token_key
    assert first.get_secret_value() != second.get_secret_value(), "one random key per process"
    assert len(first.get_secret_value()) >= 32
    assert "*" in repr(first), "a secret, never printed"
    key = "k" * 40
    monkeypatch.setenv("MARKETING_PAGE_TOKEN_KEY", key)
    assert ServiceSettings().page_token_key.get_secret_value() == key
    monkeypatch.setenv("MARKETING_PAGE_TOKEN_KEY", "short")
    with pytest.raises(ValueError, match="page_token_key"):
        ServiceSettings()


def test_a_refused_setting_is_not_repeated_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings errors reach the log, and the refused value may be a secret."""
    monkeypatch.setenv("MARKETING_PAGE_TOKEN_KEY", "too-short-secret")
    with pytest.raises(ValueError, match="page_token_key") as too_short:
        ServiceSettings()
    assert "too-short-secret" not in str(too_short.value)

    # A check of the whole model would otherwise show every input, the database password too.
    monkeypatch.delenv("MARKETING_PAGE_TOKEN_KEY")
    monkeypatch.setenv("MARKETING_DATABASE_URL", "postgresql://u:pw-4711@h/d")
    monkeypatch.setenv("MARKETING_TLS_CLIENT_CA", "/ca.pem")
    with pytest.raises(ValueError, match="MARKETING_TLS_CLIENT_CA needs") as whole_model:
        ServiceSettings()
    assert "pw-4711" not in str(whole_model.value)
    assert "/ca.pem" not in str(whole_model.value)

    with pytest.raises(ValueError, match="KLAVIYO_API_KEY") as api_key:
        DispatcherSettings(KLAVIYO_API_KEY=b"pk_\xffkey-4711")  # not text: refused
    assert "key-4711" not in str(api_key.value)
