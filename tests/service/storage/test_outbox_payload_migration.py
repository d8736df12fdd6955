"""Migration 0003 on a real PostgreSQL: outbox payloads of every kind, written
as JSON by the releases before it, become their kinds' bus messages (in
batches: more rows than one batch), and a downgrade brings back JSON that the
previous release reads as the same messages. The migration decodes with a
frozen copy of the legacy decoder: these tests check it against the live one."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from alembic import command
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.legacy import KINDS, payload_from_json
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.storage import migrate
from tests.harness import own_database

TIME = "2026-01-02T03:04:05.678901+00:00"
STATE = {
    "contact_id": str(uuid.uuid4()),
    "email": "ada@example.com",
    "phone": "+4915112345678",
    "opt_in": {"email": True, "sms": False, "push": True},
    "newsletter_member": True,
    "suppressed": False,
    "records": [{"type": "SMS", "granted": False, "source": "app", "consent_time": TIME}],
}
EVENT = {"event_id": "e-1", "metric": "", "email": "ada@example.com", "occur_time": TIME}
# Every kind in the JSON form the releases before 0003 wrote, and erased rows.
DOCS: list[tuple[str, dict[str, Any]]] = [
    (
        "event.tracked",
        EVENT
        | {
            "metric": "placed_order",
            "properties": {
                "order": {
                    "order_id": "o",
                    "total": {"currency_code": "EUR", "units": 24, "nanos": 500000000},
                    "lines": [{"product_id": "p", "quantity": 2}],
                    "coupon_codes": ["X"],
                }
            },
        },
    ),
    (
        "event.tracked",
        EVENT
        | {
            "metric": "cart_abandoned",
            "properties": {
                "cart": {"cart_id": "c", "last_activity_time": "2026-01-01T00:00:00.000005Z"}
            },
        },
    ),
    (
        "event.tracked",
        EVENT
        | {
            "metric": "review_submitted",
            "properties": {
                "name": "review_submitted",
                "properties": {"stars": 5, "nested": {"a": [1, 2.5, None]}},
                "value": {"currency_code": "USD", "units": 3},
            },
        },
    ),
    (
        "contact.upserted",
        {
            "contact_id": str(uuid.uuid4()),
            "email": "ada@example.com",
            "user_id": "u-1",
            "first_name": "Ada",
            "last_name": None,
            "phone": "+4915112345678",
            "registration_time": TIME,
            "loyalty_tier": "gold",
            "lifetime_value": "1234.500000001",
            "lifetime_value_currency": "EUR",
            "order_count": 0,
            "last_purchase_time": None,
            "location": None,
            "language": "de",
            "timezone": "Europe/Berlin",
            "custom_properties": {"vip": True},
        },
    ),
    ("consent.changed", STATE),
    ("newsletter.subscribed", STATE),
    ("contact.unsubscribed", STATE | {"reason": "too many"}),
    (
        "contact.unsubscribed",
        {
            "email": "bob@example.com",
            "opt_in": {"email": False, "sms": False, "push": False},
            "newsletter_member": False,
            "suppressed": True,
            "reason": None,
        },
    ),
    ("contact.erased", {"email": "ada@example.com", "external_id": "kl-1"}),
    ("contact.erased", {"email": "ada@example.com", "external_id": None}),
    ("contact.erased", {}),  # an erasure the provider accepted
    ("contact.upserted", {"erased": True}),  # work of an erased person
]
COPIES = 230  # > 2,500 rows: three batches of the migration's 1,000


def test_every_kind_survives_upgrade_and_downgrade(database_url: str) -> None:
    # Every kind the releases before 0003 wrote, by the name it has now (kinds
    # added since, such as list_membership.changed, never had a JSON form).
    assert {kind for kind, _ in DOCS} == {kinds.name(k) for k in KINDS.values()}
    with own_database(database_url, "outbox_migration") as url:
        migrate.downgrade(url, "0002")
        asyncio.run(_insert_json_rows(url, COPIES))

        migrate.upgrade(url)
        typed = asyncio.run(_rows(url))
        assert len(typed) == len(DOCS) * COPIES
        _assert_typed(typed)

        migrate.downgrade(url, "0002")
        _assert_json(asyncio.run(_rows(url)))
        migrate.upgrade(url)  # and up again, from what the downgrade wrote
        assert [p for _, p in asyncio.run(_rows(url))] == [p for _, p in typed]


def test_rows_over_many_small_batches_are_each_converted(database_url: str) -> None:
    """Paged by id: batch after batch (the last one partly full), each row once."""
    copies, batch = 3, 5  # 36 rows: 7 full batches and one of 1
    with own_database(database_url, "outbox_migration_batches") as url:
        config = migrate.alembic_config(url)
        config.attributes[_BATCH_ATTRIBUTE] = batch
        command.downgrade(config, "0002")
        asyncio.run(_insert_json_rows(url, copies))

        command.upgrade(config, "head")
        typed = asyncio.run(_rows(url))
        assert len(typed) == len(DOCS) * copies
        _assert_typed(typed)

        command.downgrade(config, "0002")
        _assert_json(asyncio.run(_rows(url)))


# The key under which the migration reads its batch size from the Alembic
# config (the migration module is loaded by Alembic, not importable by name).
_BATCH_ATTRIBUTE = "0003_batch"


def _assert_typed(rows: list[tuple[tuple[str, dict[str, Any]], Any]]) -> None:
    for (kind, doc), payload in rows:
        if doc in ({}, {"erased": True}):
            assert payload == b""
        else:
            expected = payload_from_json(KINDS[kind], doc)
            assert kinds.parse_payload(kinds.from_name(kind), payload) == expected


def _assert_json(rows: list[tuple[tuple[str, dict[str, Any]], Any]]) -> None:
    for (kind, doc), payload in rows:
        if doc in ({}, {"erased": True}):
            assert payload == {"erased": True}
        else:
            # What the previous release makes of the row is what it made before.
            assert payload_from_json(KINDS[kind], payload) == payload_from_json(KINDS[kind], doc)


async def _insert_json_rows(url: str, copies: int) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO marketing_outbox "
                    "(id, contact_key, kind, payload, status, created_at) "
                    "SELECT gen_random_uuid(), :key, :kind, CAST(:doc AS jsonb), 'PENDING', now() "
                    "FROM generate_series(1, :copies)"
                ),
                [
                    {
                        "key": f"k{i}",
                        "kind": kind,
                        "doc": orjson.dumps(doc).decode(),
                        "copies": copies,
                    }
                    for i, (kind, doc) in enumerate(DOCS)
                ],
            )
    finally:
        await engine.dispose()


async def _rows(url: str) -> list[tuple[tuple[str, dict[str, Any]], Any]]:
    """Each row's original (kind, doc), by its contact key, and its payload now."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT contact_key, payload FROM marketing_outbox ORDER BY seq")
                )
            ).all()
    finally:
        await engine.dispose()
    return [(DOCS[int(key[1:])], payload) for key, payload in rows]


def test_the_migration_keeps_the_event_id_the_failed_deliveries_show() -> None:
    kind, doc = DOCS[0]
    message = payload_from_json(KINDS[kind], doc)
    assert isinstance(message, bus_pb2.EventTracked) and message.event_id == "e-1"
