"""Fixtures for the dispatcher's provider tests: a real sandbox on a free port per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from tests.dispatcher.helpers import API_KEY


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with start_sandbox(api_key=API_KEY) as running:
        yield running


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A plain HTTP client on the sandbox, for the control endpoints and raw requests."""
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as client:
        yield client
