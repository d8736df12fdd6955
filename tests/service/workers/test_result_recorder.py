"""The result recorder on a real nats-server and PostgreSQL: a result it cannot
attribute to a kind (of an old release's delivery of a kind nobody knows) is
logged and acked, and the results beside it are recorded; one carrying an old
kind string the legacy table knows is recorded as that kind."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

import pytest
from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import utc_now
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer
from sqlalchemy import text

from service.storage.database import Database
from service.workers.result_recorder import ResultRecorder
from tests.harness import eventually, own_database
from tests.processes import NatsServer

_OUTBOX_ROW = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status) "
    "VALUES (CAST(:id AS uuid), :key, 'contact.upserted', :payload, 'IN_FLIGHT')"
)
# As the rules write a profile row: its kind's bus message, serialized.
_PAYLOAD = bus_pb2.ContactUpserted(contact_id=str(uuid.uuid4()), email="a@b.co").SerializeToString()
_STATUS = text("SELECT id::text, status::text, error FROM marketing_outbox")


def _result(delivery_id: str, *, kind: int = 0, old_kind: str = "") -> bus_pb2.DeliveryResult:
    return bus_pb2.DeliveryResult(
        delivery_id=delivery_id,
        type=kind,  # type: ignore[arg-type]
        kind=old_kind,
        contact_key="k",
        outcome=bus_pb2.OUTCOME_FAILED,
        error="unreadable delivery",
        attempts=1,
    )


def test_a_result_of_no_known_kind_is_logged_and_acked_and_the_rest_recorded(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    old_kind_row, typed_row = str(uuid.uuid4()), str(uuid.uuid4())
    results = bus_pb2.DeliveryResults(
        results=[
            _result("an-event-id"),  # no kind at all; not a uuid either
            _result("another-event-id", old_kind="segment.joined"),
            _result(old_kind_row, old_kind="contact.upserted"),
            _result(typed_row, kind=bus_pb2.KIND_CONTACT_UPSERTED),
        ]
    )
    server = NatsServer(tmp_path / "nats")
    server.start()

    async def scenario(url: str) -> tuple[set[tuple[str, str, str | None]], int]:
        db = Database(url)
        async with db.transaction() as session:
            for row in (old_kind_row, typed_row):
                await session.execute(_OUTBOX_ROW, {"id": row, "key": "k", "payload": _PAYLOAD})
        bus = Bus(server.url, name="test-result-recorder")
        bus.start()
        assert await bus.wait_ready(30)
        assert bus.js is not None and bus.nc is not None
        await bus.js.publish(topology.RESULTS_SUBJECT, results.SerializeToString())
        puller = PullConsumer(
            bus.nc, stream=topology.RESULTS_STREAM, durable=topology.SERVICE_RESULTS
        )
        batch = await puller.fetch(1, wait_s=5, linger_s=0)
        assert len(batch) == 1
        await ResultRecorder(db, utc_now).handle(batch)
        await bus.nc.flush()
        js = bus.js

        async def acked() -> bool:
            info = await js.consumer_info(topology.RESULTS_STREAM, topology.SERVICE_RESULTS)
            return not info.num_ack_pending

        # The server applies an ack a moment after it arrives (seen still pending
        # once, in a loaded CI run): asked until it shows, for at most 5 s, far
        # less than the ack wait after which a message not acked would go again.
        try:
            await eventually(acked, timeout_s=5)
            pending = 0
        except AssertionError:
            pending = 1
        async with db.transaction() as session:
            rows = {(r.id, r.status, r.error) for r in await session.execute(_STATUS)}
        await puller.close()
        await bus.close()
        await db.engine.dispose()
        return rows, pending

    try:
        with own_database(database_url, "recorder") as url, caplog.at_level(logging.WARNING):
            rows, unacked = asyncio.run(scenario(url))
    finally:
        server.stop()

    assert unacked == 0, "acked"
    assert rows == {
        (old_kind_row, "FAILED", "unreadable delivery"),
        (typed_row, "FAILED", "unreadable delivery"),
    }
    logged = [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()]
    assert len(logged) == 2
    assert "'an-event-id'" in logged[0] and "'segment.joined'" in logged[1]
