"""The outbox relay on a real PostgreSQL and nats-server: each row goes to its kind's work
subject (`topology.work_subject`), enrolment changes to their own, with Nats-Msg-Id = the
row id (an event's: its event id) and the rows of each subject in commit order."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import nats
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds, topology
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER, parse_delivery
from nats.aio.msg import Msg
from sqlalchemy import text

from service.storage.database import Database
from service.workers.relay import OutboxRelay
from tests.harness import eventually, own_database
from tests.processes import NatsServer

_ROW = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status) "
    "VALUES (:id, :key, :kind, :payload, 'PENDING')"
)


def _enrolment(enrolment_id: str, *, active: bool) -> bus_pb2.EnrolmentChanged:
    return bus_pb2.EnrolmentChanged(
        flow_id="welcome", enrolment_id=enrolment_id, email="ada@example.com", active=active
    )


# In commit order: what each row holds.
ROWS: list[tuple[bus_pb2.Kind, Any]] = [
    (bus_pb2.KIND_CONTACT_UPSERTED, bus_pb2.ContactUpserted(email="ada@example.com")),
    (bus_pb2.KIND_ENROLMENT_CHANGED, _enrolment("e-1", active=True)),
    (
        bus_pb2.KIND_CONTACT_UNSUBSCRIBED,
        bus_pb2.ContactUnsubscribed(state=bus_pb2.ConsentState(email="ada@example.com")),
    ),
    (
        bus_pb2.KIND_EVENT_TRACKED,
        bus_pb2.EventTracked(event_id="ev-1", email="ada@example.com", metric="placed_order"),
    ),
    (bus_pb2.KIND_ENROLMENT_CHANGED, _enrolment("e-1", active=False)),
]


def test_each_kind_goes_to_its_subject_enrolment_changes_to_their_own(
    tmp_path: Path, database_url: str
) -> None:
    ids = [uuid.uuid4() for _ in ROWS]
    key = f"relay-{uuid.uuid4().hex}"
    # A server of its own: no dispatcher of another test delivers what is published here.
    nats_server = NatsServer(tmp_path / "nats")
    nats_server.start()

    async def scenario(url: str) -> list[Msg]:
        db = Database(url)
        watcher = await nats.connect(nats_server.url)
        seen: list[Msg] = []

        async def note(msg: Msg) -> None:
            if parse_delivery(msg.data).contact_key == key:
                seen.append(msg)

        await watcher.subscribe("marketing.work.>", cb=note)
        await watcher.flush()
        async with db.transaction() as session:
            for id_, (kind, payload) in zip(ids, ROWS, strict=True):
                row = {"id": id_, "key": key, "kind": kinds.name(kind)}
                await session.execute(_ROW, row | {"payload": payload.SerializeToString()})
        bus = Bus(nats_server.url, name="test-relay")
        bus.start()
        relay = OutboxRelay(db, bus)
        task = asyncio.create_task(relay.run())

        async def all_seen() -> bool:
            return len(seen) == len(ROWS)

        try:
            await eventually(all_seen, timeout_s=30)
        finally:
            relay.stop()
            await task
            await bus.close()
            await watcher.close()
            await db.engine.dispose()
        return seen

    try:
        with own_database(database_url, "relay") as url:
            seen = asyncio.run(scenario(url))
    finally:
        nats_server.stop()

    by_id = {parse_delivery(msg.data).id: msg for msg in seen}
    # Written out, not derived from the mapping under test.
    subjects = {
        bus_pb2.KIND_EVENT_TRACKED: "marketing.work.events",
        bus_pb2.KIND_ENROLMENT_CHANGED: "marketing.work.enrolments",
    }
    expected = {
        str(id_): (subjects.get(kind, "marketing.work.contacts"), kind)
        for id_, (kind, _) in zip(ids, ROWS, strict=True)
    }
    expected["ev-1"] = expected.pop(str(ids[3]))  # an event keeps its event id end to end
    assert {d: (m.subject, parse_delivery(m.data).type) for d, m in by_id.items()} == expected
    assert {d: (m.headers or {}).get(MSG_ID_HEADER) for d, m in by_id.items()} == {
        d: d for d in expected
    }
    assert topology.ENROLMENTS_SUBJECT == "marketing.work.enrolments"
    for subject in (topology.CONTACTS_SUBJECT, topology.ENROLMENTS_SUBJECT):
        in_order = [parse_delivery(m.data) for m in seen if m.subject == subject]
        assert [d.id for d in in_order] == [d for d in expected if expected[d][0] == subject]
        assert [d.sequence for d in in_order] == sorted(d.sequence for d in in_order)
