"""Fixtures for the dispatcher's tests: a real sandbox on a free port per test, and
a nats-server per test module for the workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dispatcher.sandbox import Sandbox, start_sandbox
from tests.dispatcher.helpers import API_KEY
from tests.processes import NatsServer


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with start_sandbox(api_key=API_KEY) as running:
        yield running


@pytest.fixture
def http(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A plain HTTP client on the sandbox, for the control endpoints and raw requests."""
    with httpx.Client(base_url=sandbox.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def own_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """A server of its own: the work and results left here reach no other test."""
    server = NatsServer(Path(tmp_path_factory.mktemp("nats-worker")))
    server.start()
    yield server
    server.stop()
