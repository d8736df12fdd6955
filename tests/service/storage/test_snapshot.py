"""Database.snapshot: a read of several statements sees one moment, and writes
nothing. Against the real PostgreSQL: a write committed between the snapshot's
statements is not seen by its second one, where a plain transaction sees it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.database import Database

_ADD = text("INSERT INTO marketing_suppression (email_sha256, reason) VALUES (:key, 'test')")
_COUNT = text("SELECT count(*) FROM marketing_suppression WHERE email_sha256 = :key")
_REMOVE = text("DELETE FROM marketing_suppression WHERE email_sha256 = :key")

Opener = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def _seen_around_a_write(db: Database, opened: Opener) -> tuple[int, int]:
    """What two reads in one session opened by `opened` see of a row that
    another transaction commits between them."""
    key = uuid.uuid4().hex
    try:
        async with opened() as session:
            before = await session.scalar(_COUNT, {"key": key})
            async with db.transaction() as writer:
                await writer.execute(_ADD, {"key": key})
            after = await session.scalar(_COUNT, {"key": key})
        return int(before or 0), int(after or 0)
    finally:
        async with db.transaction() as cleanup:
            await cleanup.execute(_REMOVE, {"key": key})


def test_a_snapshot_sees_one_moment_where_a_transaction_sees_each_statements(
    database_url: str,
) -> None:
    async def both() -> tuple[tuple[int, int], tuple[int, int]]:
        db = Database(database_url, pool_size=2)
        try:
            return (
                await _seen_around_a_write(db, db.snapshot),
                await _seen_around_a_write(db, db.transaction),
            )
        finally:
            await db.close()

    in_snapshot, in_transaction = asyncio.run(both())
    assert in_snapshot == (0, 0), "the write committed between the reads is not seen"
    assert in_transaction == (0, 1), "READ COMMITTED: the second statement sees it"


def test_a_snapshot_writes_nothing(database_url: str) -> None:
    key = uuid.uuid4().hex

    async def write() -> None:
        db = Database(database_url, pool_size=1)
        try:
            async with db.snapshot() as session:
                await session.execute(_ADD, {"key": key})
        finally:
            await db.close()

    # A write there is a bug, not a caller's mistake: no meaning is given to it.
    with pytest.raises(DBAPIError, match="read-only transaction"):
        asyncio.run(write())


def test_a_snapshot_leaves_its_connection_as_it_found_it(database_url: str) -> None:
    """One connection in the pool: after a snapshot, the next transaction on it is
    READ COMMITTED and may write."""
    key = uuid.uuid4().hex

    async def after_a_snapshot() -> str:
        db = Database(database_url, pool_size=1, max_overflow=0)
        try:
            async with db.snapshot() as session:
                assert await session.scalar(text("SHOW transaction_isolation")) == "repeatable read"
            async with db.transaction() as session:
                await session.execute(_ADD, {"key": key})
                await session.execute(_REMOVE, {"key": key})
                return str(await session.scalar(text("SHOW transaction_isolation")))
        finally:
            await db.close()

    assert asyncio.run(after_a_snapshot()) == "read committed"
