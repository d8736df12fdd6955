"""The event fast path through a NATS outage: events go to PostgreSQL, and the
log says so twice (when the fallback starts, when it ends), not once per call."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime.connection import Bus
from sqlalchemy import text

from service.common.validation import normalized_email_key
from service.events.event_log import EventRecord, PostgresEventSink
from service.events.fast_path import BusEventSink
from service.metrics import EVENTS_FALLBACK
from service.storage.database import Database
from tests.harness import unique_email, until_true
from tests.processes import NatsServer

CALLS_WHILE_DOWN = 50


_FALLBACK_BODY = bus_pb2.CustomEvent(
    name="fallback_test", properties_json=b'{"n":1}'
).SerializeToString()


def test_an_outage_is_logged_when_the_fallback_starts_and_when_it_ends(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    email = unique_email("fallback")
    key = normalized_email_key(email)

    def record() -> EventRecord:
        return EventRecord(
            event_id=str(uuid.uuid4()),
            email=email,
            contact_key=key,
            metric="fallback_test",
            payload={"name": "fallback_test", "properties": {"n": 1}},
            occurred_at=datetime.now(UTC),
            body_field="custom",
            body=_FALLBACK_BODY,
        )

    async def through_the_outage(bus: Bus, sink: BusEventSink) -> float:
        assert await bus.wait_ready(30)
        first = record()
        assert await sink.accept([first], datetime.now(UTC)) == {first.event_id}
        server.stop()
        await until_true(lambda: bus.publisher is None)
        counted = EVENTS_FALLBACK._value.get()
        for _ in range(CALLS_WHILE_DOWN):
            down = record()
            assert await sink.accept([down], datetime.now(UTC)) == {down.event_id}
        counted = EVENTS_FALLBACK._value.get() - counted
        server.start()
        await until_true(lambda: bus.publisher is not None)
        for _ in range(3):
            after = record()
            assert await sink.accept([after], datetime.now(UTC)) == {after.event_id}
        return counted

    async def main() -> float:
        db = Database(database_url)
        bus = Bus(server.url, name="test-fast-path")
        bus.start()
        try:
            return await through_the_outage(bus, BusEventSink(bus, PostgresEventSink(db)))
        finally:
            await bus.close()
            await _forget(db, key)
            await db.close()

    try:
        with caplog.at_level(logging.INFO, logger="service.events.fast_path"):
            counted = asyncio.run(main())
    finally:
        server.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "service.events.fast_path"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("bus fallback started: not connected to NATS")
    assert lines[1].startswith("bus fallback ended")
    assert f"{CALLS_WHILE_DOWN} events went to PostgreSQL" in lines[1]
    assert counted == CALLS_WHILE_DOWN


async def _forget(db: Database, key: str) -> None:
    """The fallen-back rows would wait for a relay in later tests of the session."""
    async with db.transaction() as session:
        for table in ("marketing_outbox", "marketing_event_log"):
            await session.execute(
                text(f"DELETE FROM {table} WHERE contact_key = :key"), {"key": key}
            )
