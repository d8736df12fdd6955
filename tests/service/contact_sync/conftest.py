from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import own_database
from tests.processes import NatsServer


@pytest.fixture
def sync_nats(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server of the test's own: no chunk of another test is on it."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sync_db(database_url: str) -> Iterator[str]:
    """A database of the test's own: one sync runs at a time in each."""
    with own_database(database_url, "sync") as url:
        yield url
