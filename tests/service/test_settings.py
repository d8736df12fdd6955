"""Settings read from the environment: defaults, overrides and refusals."""

from __future__ import annotations

import pytest

from dispatcher.settings import DispatcherSettings
from service.settings import ServiceSettings


@pytest.fixture(autouse=True)
def database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETING_DATABASE_URL", "postgresql://x@localhost/y")


def test_gc_threshold_default_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().gc_gen0_threshold == 20_000
    assert DispatcherSettings().gc_gen0_threshold == 20_000
    monkeypatch.setenv("MARKETING_GC_GEN0_THRESHOLD", "0")
    assert ServiceSettings().gc_gen0_threshold == 0
    assert DispatcherSettings().gc_gen0_threshold == 0
    monkeypatch.setenv("MARKETING_GC_GEN0_THRESHOLD", "-1")
    with pytest.raises(ValueError, match="gc_gen0_threshold"):
        ServiceSettings()


def test_group_commit_window_default_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().publish_group_commit_ms == 5
    monkeypatch.setenv("MARKETING_PUBLISH_GROUP_COMMIT_MS", "0")
    assert ServiceSettings().publish_group_commit_ms == 0
    monkeypatch.setenv("MARKETING_PUBLISH_GROUP_COMMIT_MS", "250")
    with pytest.raises(ValueError, match="publish_group_commit_ms"):
        ServiceSettings()
