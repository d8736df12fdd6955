"""Erasure's forgetting of conversions beside a live attribution pass, against
the real PostgreSQL. The pass claims a person's queue entries, then replaces
their conversions; erasure takes the same rows in the same order, so it waits
for the pass instead of holding the conversions the pass wants next (a deadlock
PostgreSQL would answer by aborting one of them)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from service.reports import attribution
from service.storage.database import Database
from tests.harness import own_database, until_waiting_for

WAIT_S = 30

# A placed order logged: the event log's trigger queues its person for attribution.
_ORDER = text(
    "INSERT INTO marketing_event_log"
    " (id, contact_key, type, data, occurred_at, status, retry_count, max_retries)"
    " VALUES (:id, :key, 'placed_order', '{}', now(), 'PENDING', 0, 6)"
)
_CONVERSION = text(
    "INSERT INTO marketing_conversion (order_event_id, contact_key, ordered_at, engagement_id,"
    " provider, campaign_id, flow_id, message_id, currency, amount_nanos)"
    " VALUES (:id, :key, now(), 1, 'klaviyo', 'c1', '', 'm1', 'EUR', 1000000000)"
)
# The pass's first step (attribute_pending's claim), for this person's entries.
_CLAIM = text(
    "DELETE FROM marketing_attribution_pending WHERE contact_key = :key RETURNING contact_key"
)
# Its next: the person's conversions, which erasure must not hold meanwhile.
_TAKE_CONVERSIONS_NOWAIT = text(
    "SELECT 1 FROM marketing_conversion WHERE contact_key = :key FOR UPDATE NOWAIT"
)
_LEFT = text(
    "SELECT (SELECT count(*) FROM marketing_attribution_pending WHERE contact_key = :key),"
    " (SELECT count(*) FROM marketing_conversion WHERE contact_key = :key)"
)


async def _forget(db: Database, key: str) -> None:
    async with db.transaction() as session:
        await attribution.forget(session, key)


async def _beside_a_pass(db: Database, key: str) -> tuple[int, int]:
    async with db.engine.connect() as attribution_pass:
        assert (await attribution_pass.execute(_CLAIM, {"key": key})).all(), "nothing queued"
        pid = await attribution_pass.scalar(text("SELECT pg_backend_pid()"))
        erasure = asyncio.create_task(_forget(db, key))
        try:
            await until_waiting_for(db.engine, pid, erasure, timeout_s=WAIT_S)
            assert not erasure.done(), "erasure did not wait for the pass's queue entry"
            try:
                await attribution_pass.execute(_TAKE_CONVERSIONS_NOWAIT, {"key": key})
            except DBAPIError as exc:
                pytest.fail(f"erasure held the conversions while it waited for the queue: {exc}")
            await attribution_pass.commit()
            await asyncio.wait_for(asyncio.shield(erasure), WAIT_S)
        finally:
            if not erasure.done():
                await attribution_pass.rollback()
                erasure.cancel()
            await asyncio.gather(erasure, return_exceptions=True)
        left = (await attribution_pass.execute(_LEFT, {"key": key})).one()
        return int(left[0]), int(left[1])


def test_erasure_forgets_conversions_after_a_pass_over_the_person_ends(
    database_url: str,
) -> None:
    key, order = uuid.uuid4().hex * 2, f"order-{uuid.uuid4().hex}"

    async def scenario(url: str) -> tuple[int, int]:
        db = Database(url)
        try:
            async with db.transaction() as session:
                await session.execute(_ORDER, {"id": order, "key": key})
                await session.execute(_CONVERSION, {"id": order, "key": key})
            return await _beside_a_pass(db, key)
        finally:
            await db.close()

    with own_database(database_url, "attribution_erasure") as url:
        assert asyncio.run(scenario(url)) == (0, 0)
