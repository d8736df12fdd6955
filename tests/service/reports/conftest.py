"""Fixtures of the reports tests: an event loop per module and, for the tests
that compare whole tables, `db`: a migrated database of the module's own (test_reports.py
uses the service harness's database instead, with a `db` of its own)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from service.storage.database import Database
from tests.harness import own_database


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def db(
    request: pytest.FixtureRequest, database_url: str, loop: asyncio.AbstractEventLoop
) -> Iterator[Database]:
    label = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:20]
    with own_database(database_url, label) as url:
        database = Database(url)
        yield database
        loop.run_until_complete(database.close())
