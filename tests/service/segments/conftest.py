from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import ServiceHarness, own_database


@pytest.fixture(scope="module")
def segments_harness(database_url: str) -> Iterator[ServiceHarness]:
    """A service on a database of the module's own: its dynamic segments are
    re-evaluated on every contact change, which no other test should pay for."""
    with own_database(database_url, "segments") as url, ServiceHarness.start(url) as running:
        yield running


@pytest.fixture
def seg(segments_harness: ServiceHarness):
    return segments_harness.stub
