"""Migration 0021 on a real PostgreSQL: the outbox's payloads are stored uncompressed
(out of line when large), a large payload reads back whole, and a downgrade restores
PostgreSQL's default (compressed) storage."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.storage import migrate
from tests.harness import own_database

_STORAGE = (
    "SELECT CAST(attstorage AS text) FROM pg_attribute"
    " WHERE attrelid = 'marketing_outbox'::regclass AND attname = 'payload'"
)
_SIZE = "SELECT pg_column_size(payload) FROM marketing_outbox WHERE id = :id"
_INSERT = (
    "INSERT INTO marketing_outbox (id, contact_key, kind, payload, created_at, status, attempts)"
    " VALUES (:id, 'k', 'enrolments.begun', :payload, now(), 'PENDING', 0)"
)
# Compressible and well past the TOAST threshold (about 2 KB): a restock's message of
# beginnings is about 400 KB of much the same fields.
LARGE = b"".join(
    os.urandom(2).hex().encode() + b";enrolment-began:back-in-stock:flowbench@bench.example.com;"
    for _ in range(4000)
)


async def _scalar(url: str, statement: str, **params: object) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(statement), params)
    finally:
        await engine.dispose()


def _storage(url: str) -> str:
    return str(asyncio.run(_scalar(url, _STORAGE)))


def _stored_size(url: str, row: uuid.UUID) -> int:
    return int(asyncio.run(_scalar(url, _SIZE, id=row)))


async def _write(url: str, row: uuid.UUID) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(_INSERT), {"id": row, "payload": LARGE})
    finally:
        await engine.dispose()


def _round_trip(url: str, row: uuid.UUID) -> tuple[bytes, int, int]:
    """A large payload written as `row` and read back, with its stored and its raw size."""
    asyncio.run(_write(url, row))
    read = asyncio.run(_scalar(url, "SELECT payload FROM marketing_outbox WHERE id = :id", id=row))
    return bytes(read), _stored_size(url, row), len(LARGE)


def test_outbox_payloads_are_stored_uncompressed_and_the_downgrade_compresses_again(
    database_url: str,
) -> None:
    with own_database(database_url, "outbox_storage_migration") as url:
        assert _storage(url) == "e"  # EXTERNAL: out of line, uncompressed
        whole = uuid.uuid4()
        read, stored, raw = _round_trip(url, whole)
        assert read == LARGE
        assert stored >= raw  # kept whole

        migrate.downgrade(url, "0020")
        assert _storage(url) == "x"  # EXTENDED: PostgreSQL's default
        read, stored, raw = _round_trip(url, uuid.uuid4())
        assert read == LARGE
        assert stored < raw // 2  # compressed again
        assert _stored_size(url, whole) >= raw  # a row written before keeps its form

        migrate.upgrade(url)
        assert _storage(url) == "e"
