"""Many rows by one statement (service.storage.bulk): inserted in the order given, each
with its own values, whether a column is bound as an array (values that differ) or
once (the very same object in every row); or copied, all or none. Real PostgreSQL,
the timers' table."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from service.storage.bulk import BOUND_ONCE_FROM, copy_new_rows, insert_rows
from service.storage.database import Database
from service.storage.models import Timer

# Far ahead: the session's database is shared with a running service's timer
# worker (the `harness` fixture), which takes and deletes every timer that is due,
# whatever its kind, between a test's write and its read.
DUE = datetime(2100, 12, 5, 18, 0, tzinfo=UTC)


def _written(database_url: str, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """`rows` inserted (their keys as the INSERT returned them), then read back in key order."""

    async def go() -> list[tuple[Any, ...]]:
        db = Database(database_url)
        try:
            async with db.transaction() as session:
                returned = list(
                    await session.scalars(insert_rows(Timer, rows).returning(Timer.key))
                )
                assert returned == [row["key"] for row in rows], "inserted in the order given"
            async with db.transaction() as session:
                found = await session.execute(
                    select(Timer.key, Timer.contact_id, Timer.due_at, Timer.base_at, Timer.payload)
                    .where(Timer.kind == rows[0]["kind"])
                    .order_by(Timer.key)
                )
                return [tuple(row) for row in found]
        finally:
            await db.close()

    return asyncio.run(go())


def _rows(kind: str, count: int, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Timers of `kind` out of key order: the same due time and payload objects in
    every row, base times equal in value only (one object each)."""
    return [
        {
            "kind": kind,
            "key": f"k{n:03}",
            "contact_id": None,
            "due_at": DUE,
            "base_at": DUE - timedelta(minutes=n) + timedelta(minutes=n),
            "payload": payload,
        }
        for n in [3, 1, 2, *range(4, count + 1)]
    ]


def _arrays(rows: list[dict[str, Any]]) -> int:
    """How many arrays the INSERT of `rows` unnests."""
    sql = str(insert_rows(Timer, rows).compile(dialect=postgresql.asyncpg.dialect()))
    return sql[sql.index("unnest(") : sql.index("WITH ORDINALITY")].count("[]")


def test_columns_shared_by_every_row_are_bound_once_and_each_row_keeps_its_values(
    database_url: str,
) -> None:
    payload = {"flow_id": "welcome", "lines": [1, 2]}  # one object, in every row
    rows = _rows(f"bulk-{uuid.uuid4().hex[:12]}", BOUND_ONCE_FROM, payload)

    assert _arrays(rows) == 2, "only key and base_at go as arrays"
    assert _written(database_url, rows) == [
        (f"k{n:03}", None, DUE, DUE, payload) for n in range(1, BOUND_ONCE_FROM + 1)
    ]


def test_fewer_rows_go_as_arrays_whatever_they_share(database_url: str) -> None:
    """Below BOUND_ONCE_FROM rows, sharing may be chance: no statement of its own."""
    rows = _rows(f"bulk-{uuid.uuid4().hex[:12]}", BOUND_ONCE_FROM - 1, {"a": 1})

    assert _arrays(rows) == 6
    assert [key for key, *_ in _written(database_url, rows)] == [
        f"k{n:03}" for n in range(1, BOUND_ONCE_FROM)
    ]


def test_a_single_row_is_written_whole(database_url: str) -> None:
    kind = f"bulk-{uuid.uuid4().hex[:12]}"
    row = {"kind": kind, "key": "only", "due_at": DUE, "base_at": DUE, "payload": {"a": 1}}

    assert _written(database_url, [row]) == [("only", None, DUE, DUE, {"a": 1})]


def _copied(database_url: str, kind: str, taken: list[str], rows: list[dict[str, Any]]) -> Any:
    """In one transaction: a timer of `kind` under each of the `taken` keys, then
    `rows` copied, then one more timer (the transaction goes on either way); what
    the copy answered and the keys then stored."""

    async def go() -> tuple[bool, list[str]]:
        db = Database(database_url)
        try:
            async with db.transaction() as session:
                before = [_timer(kind, key) for key in taken]
                if before:
                    await session.execute(insert_rows(Timer, before))
                copied = await copy_new_rows(session, Timer, rows)
                await session.execute(insert_rows(Timer, [_timer(kind, "after")]))
            async with db.transaction() as session:
                keys = await session.scalars(
                    select(Timer.key).where(Timer.kind == kind).order_by(Timer.key)
                )
                return copied, list(keys)
        finally:
            await db.close()

    return asyncio.run(go())


def _timer(kind: str, key: str) -> dict[str, Any]:
    return {"kind": kind, "key": key, "due_at": DUE, "base_at": DUE, "payload": {}}


def test_copied_rows_keep_their_values_json_included(database_url: str) -> None:
    kind = f"copy-{uuid.uuid4().hex[:12]}"
    rows = _rows(kind, 3, {"cart": {"items": [1, 2]}, "id": None})

    assert _copied(database_url, kind, [], rows) == (True, ["after", "k001", "k002", "k003"])

    async def payloads() -> list[Any]:
        db = Database(database_url)
        try:
            async with db.transaction() as session:
                found = await session.scalars(
                    select(Timer.payload).where(Timer.kind == kind, Timer.key != "after")
                )
                return list(found)
        finally:
            await db.close()

    assert asyncio.run(payloads()) == [{"cart": {"items": [1, 2]}, "id": None}] * 3


def test_a_copy_with_a_conflicting_row_writes_none_and_the_transaction_goes_on(
    database_url: str,
) -> None:
    kind = f"copy-{uuid.uuid4().hex[:12]}"
    rows = _rows(kind, 3, {})

    copied, keys = _copied(database_url, kind, ["k002"], rows)

    assert not copied
    assert keys == ["after", "k002"], "none of the copy's rows, and what came before and after"


def test_a_copy_goes_with_its_transaction_when_that_rolls_back(database_url: str) -> None:
    """Also when the COPY is the transaction's first statement: it is the
    transaction's savepoint, never a transaction of its own."""
    kind = f"copy-{uuid.uuid4().hex[:12]}"

    async def go() -> list[str]:
        db = Database(database_url)
        try:
            with contextlib.suppress(_Undone):
                async with db.transaction() as session:
                    assert await copy_new_rows(session, Timer, _rows(kind, 3, {}))
                    raise _Undone
            async with db.transaction() as session:
                return list(await session.scalars(select(Timer.key).where(Timer.kind == kind)))
        finally:
            await db.close()

    assert asyncio.run(go()) == []


class _Undone(Exception):
    """What makes a test's transaction roll back."""
