"""The event-log writer on a real nats-server and PostgreSQL: a message it
cannot log (an event without a body, bytes that are no Delivery) is left out
with a warning and acked, and the events beside it are logged."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer
from nats.js.api import ConsumerInfo
from sqlalchemy import text

from service.storage.database import Database
from service.workers.event_log_writer import EventLogWriter
from tests.harness import eventually, own_database
from tests.processes import NatsServer

_LOGGED = text("SELECT id FROM marketing_event_log")


def _event(event_id: str, *, body: bool = True) -> bytes:
    event = bus_pb2.EventTracked(event_id=event_id, email="a@b.co", metric="signed_up")
    if body:
        event.custom.name = "signed_up"
    delivery = bus_pb2.Delivery(
        id=event_id, type=bus_pb2.KIND_EVENT_TRACKED, contact_key="k", event_tracked=event
    )
    return delivery.SerializeToString()


def test_an_event_without_a_body_is_skipped_and_acked_and_the_rest_logged(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    messages = [_event("e-1"), _event("no-body", body=False), b"\x0a\x7fno", _event("e-2")]
    server = NatsServer(tmp_path / "nats")
    server.start()

    async def scenario(url: str) -> tuple[set[str], int]:
        db = Database(url)
        bus = Bus(server.url, name="test-event-log-writer")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        for data in messages:
            await bus.js.publish(topology.EVENTS_SUBJECT, data)
        puller = PullConsumer(
            bus.nc, stream=topology.WORK_STREAM, durable=topology.SERVICE_EVENT_LOG
        )
        batch = await puller.fetch(len(messages), wait_s=5, linger_s=0.5)
        assert len(batch) == len(messages)
        await EventLogWriter(db, utc_now).handle(batch)

        async def settled() -> ConsumerInfo | None:
            # The server applies acks on its own time (a flush does not wait for that).
            assert bus.js is not None
            info = await bus.js.consumer_info(topology.WORK_STREAM, topology.SERVICE_EVENT_LOG)
            return info if not info.num_ack_pending else None

        info = await eventually(settled, timeout_s=10)
        async with db.transaction() as session:
            logged = set(await session.scalars(_LOGGED))
        await puller.close()
        await bus.close()
        await db.engine.dispose()
        return logged, info.num_ack_pending or 0

    try:
        with (
            own_database(database_url, "event_log_writer") as url,
            caplog.at_level(logging.WARNING),
        ):
            logged, unacked = asyncio.run(scenario(url))
    finally:
        server.stop()

    assert unacked == 0, "acked"
    assert logged == {"e-1", "e-2"}
    skipped = [r.getMessage() for r in caplog.records if "not logged" in r.getMessage()]
    assert len(skipped) == 2 and "'no-body'" in skipped[0]
