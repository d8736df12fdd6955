"""Migration 0020 on a real PostgreSQL: a restock still notifying when it runs (its
subscriptions picked, NOTIFYING, as every restock picked before) keeps them, and the
flow worker notifies exactly them; the restocks made before are finished as ranges. A
downgrade gives an open range back as NOTIFYING subscriptions of its restock, which the
worker then notifies."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.storage import migrate
from service.storage.database import Database
from service.waitlists import restocks
from service.workers.flow_worker import FlowWorker
from tests.harness import own_database

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PRODUCT = "mug-0020"


async def _before(url: str) -> dict[str, uuid.UUID]:
    """As 0019 left things: four waiting, the first two picked by an open restock, and
    an earlier restock that picked no one."""
    engine = create_async_engine(url)
    people = {f"p{n}": uuid.uuid4() for n in range(4)}
    open_restock, done_restock = uuid.uuid4(), uuid.uuid4()
    try:
        async with engine.begin() as conn:
            for n, (label, contact_id) in enumerate(people.items()):
                await conn.execute(
                    text(
                        "INSERT INTO marketing_contact (id, email, custom_properties, "
                        "email_opt_in, sms_opt_in, push_opt_in, created_at, updated_at) "
                        "VALUES (:id, :email, '{}', true, false, false, :at, :at)"
                    ),
                    {
                        "id": contact_id,
                        "email": f"{label}-{uuid.uuid4().hex[:6]}@x.example",
                        "at": T0,
                    },
                )
                await conn.execute(
                    text(
                        "INSERT INTO marketing_back_in_stock_subscription (id, contact_id, "
                        "product_id, variant_id, state, source, restock_id, created_at) VALUES "
                        "(:id, :contact, :product, '', :state, 'test', :restock, :at)"
                    ),
                    {
                        "id": uuid.uuid4(),
                        "contact": contact_id,
                        "product": PRODUCT,
                        "state": "NOTIFYING" if n < 2 else "WAITING",
                        "restock": open_restock if n < 2 else None,
                        "at": T0 + timedelta(seconds=n),
                    },
                )
            for restock_id, picked in ((done_restock, 0), (open_restock, 2)):
                await conn.execute(
                    text(
                        "INSERT INTO marketing_restock (id, product_id, variant_id, quantity, "
                        "product, picked, created_at) VALUES (:id, :product, '', 2, "
                        "CAST(:doc AS jsonb), :picked, :at)"
                    ),
                    {
                        "id": restock_id,
                        "product": PRODUCT,
                        "doc": '{"url": "https://shop.example/mug"}',
                        "picked": picked,
                        "at": T0 + timedelta(days=1),
                    },
                )
    finally:
        await engine.dispose()
    return people | {"open": open_restock, "done": done_restock}


async def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


async def _notify_all(url: str) -> None:
    db = Database(url)
    try:
        await FlowWorker(db, lambda: T0 + timedelta(days=2)).notify_all()
    finally:
        await db.close()


STATES = (
    "SELECT c.email, s.state FROM marketing_back_in_stock_subscription s "
    f"JOIN marketing_contact c ON c.id = s.contact_id WHERE s.product_id = '{PRODUCT}' "
    "ORDER BY s.created_at"
)


def test_picked_subscriptions_are_notified_across_the_migration_and_back(
    database_url: str,
) -> None:
    with own_database(database_url, "restock_range_migration") as url:
        migrate.downgrade(url, "0019")
        ids = asyncio.run(_before(url))
        migrate.upgrade(url)
        states = [s for _, s in asyncio.run(_rows(url, STATES))]
        assert states == ["NOTIFYING", "NOTIFYING", "WAITING", "WAITING"]
        rows = asyncio.run(_rows(url, "SELECT id, finished_at IS NOT NULL FROM marketing_restock"))
        assert {row[0]: row[1] for row in rows} == {ids["open"]: True, ids["done"]: True}
        asyncio.run(_notify_all(url))
        states = [s for _, s in asyncio.run(_rows(url, STATES))]
        assert states == ["NOTIFIED", "NOTIFIED", "WAITING", "WAITING"]

        asyncio.run(_restock(url))  # a range: the two waiting
        migrate.downgrade(url, "0019")
        states = [s for _, s in asyncio.run(_rows(url, STATES))]
        assert states == ["NOTIFIED", "NOTIFIED", "NOTIFYING", "NOTIFYING"]
        migrate.upgrade(url)
        asyncio.run(_notify_all(url))
        states = [s for _, s in asyncio.run(_rows(url, STATES))]
        assert states == ["NOTIFIED"] * 4


async def _restock(url: str) -> None:
    db = Database(url)
    try:
        restock = await restocks.notify(
            db,
            product_id=PRODUCT,
            variant_id="",
            quantity=None,
            product={"url": "https://shop.example/mug"},
            request_id=None,
            now=T0 + timedelta(days=2),
        )
        assert restock.picked == 2
    finally:
        await db.close()
