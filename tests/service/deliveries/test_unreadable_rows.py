"""The failed-deliveries queue with a row whose payload does not parse (one
the relay failed as unreadable): it is listed (with no event id) beside the
rows around it, and a re-drive queues it again, for the relay to fail again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from marketing.bus.v1 import bus_pb2
from marketing_runtime.connection import Bus
from sqlalchemy import text

from service.common.pagination import PageTokens
from service.deliveries import outbox, rules
from service.storage.database import Database
from service.workers.relay import OutboxRelay
from tests.harness import eventually, own_database
from tests.processes import NatsServer

_FAILED_ROW = text(
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, status, error) "
    "VALUES (:id, 'k', :kind, :payload, 'FAILED', 'unreadable')"
)
_ROW = text("SELECT status::text, error, retry_count FROM marketing_outbox WHERE id = :id")
# Not a serialized message: a length-delimited field 1 promising more bytes than there are.
_CORRUPT = b"\x0a\x7fnot a message"
_READABLE = bus_pb2.EventTracked(event_id="ev-1", email="a@b.co", metric="m").SerializeToString()


def test_event_id_and_contact_id_of_bytes_that_do_not_parse_are_empty() -> None:
    assert outbox.event_id(outbox.EVENT_TRACKED, _CORRUPT) == ""
    assert outbox.contact_id("contact.upserted", _CORRUPT) == ""
    assert outbox.event_id(outbox.EVENT_TRACKED, _READABLE) == "ev-1"


def test_an_unreadable_row_is_listed_and_retried_and_the_relay_fails_it_again(
    database_url: str, nats_server: NatsServer
) -> None:
    unreadable, readable = uuid.uuid4(), uuid.uuid4()

    async def scenario(url: str) -> tuple[list[Any], int, Any]:
        db = Database(url)
        async with db.transaction() as session:
            for id_, payload in ((unreadable, _CORRUPT), (readable, _READABLE)):
                await session.execute(
                    _FAILED_ROW, {"id": id_, "kind": outbox.EVENT_TRACKED, "payload": payload}
                )
        page = await rules.list_failed(db, PageTokens(b"k"), page_size=10, page_token="")
        retried = await rules.retry_failed(db, names=[f"{rules.NAME_PREFIX}{unreadable}"])
        bus = Bus(nats_server.url, name="test-unreadable-rows")
        bus.start()
        relay = OutboxRelay(db, bus)
        task = asyncio.create_task(relay.run())

        async def failed_again() -> Any:
            async with db.transaction() as session:
                row = (await session.execute(_ROW, {"id": unreadable})).first()
            return row if row is not None and row.status == "FAILED" else None

        try:
            row = await eventually(failed_again)
        finally:
            relay.stop()
            await task
            await bus.close()
            await db.engine.dispose()
        return page.failed, retried, row

    with own_database(database_url, "unreadable") as url:
        failed, retried, row = asyncio.run(scenario(url))

    assert {(f.id, f.event_id) for f in failed} == {(unreadable, ""), (readable, "ev-1")}
    assert retried == 1
    assert row.retry_count == 1 and "unreadable outbox payload" in row.error
