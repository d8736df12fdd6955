"""A nats-server of a test's own with a small max_payload, so that messages
over the limit are small too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import SMALL_MAX_PAYLOAD, NatsServer


@pytest.fixture
def small_nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats", max_payload=SMALL_MAX_PAYLOAD)
    server.start()
    yield server
    server.stop()
