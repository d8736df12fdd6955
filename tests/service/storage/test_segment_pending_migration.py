"""Migration 0006 on a real PostgreSQL: segments made before it learn the
event types their filters count (so events of other types mark nobody), and a
downgrade takes the pending table and the column away again."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.segments import filters as f
from service.storage import migrate
from tests.harness import own_database

ORDERS = f.Condition(
    f.EventSubject("placed_order", timedelta(days=30), (), f.Measure.COUNT),
    f.Op.GREATER_THAN_OR_EQUAL,
    2.0,
)
VIEWS = f.Condition(f.EventSubject("product_viewed", None, (), f.Measure.COUNT), f.Op.EQUALS, 0.0)
GOLD = f.Condition(f.FieldSubject(f.Field.LOYALTY_TIER), f.Op.EQUALS, "gold")
SEGMENTS: dict[str, f.Node] = {
    "nested": f.Group(True, (GOLD, f.Group(False, (ORDERS, VIEWS, ORDERS)))),
    "plain": GOLD,
}


async def _insert(url: str) -> None:
    engine = create_async_engine(url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        async with engine.begin() as conn:
            for segment_id, node in SEGMENTS.items():
                await conn.execute(
                    text(
                        "INSERT INTO marketing_segment (id, display_name, kind, filter, "
                        "has_events, created_at, updated_at) VALUES (:id, :id, 'DYNAMIC', "
                        "CAST(:filter AS jsonb), :has_events, :now, :now)"
                    ),
                    {
                        "id": segment_id,
                        "filter": json.dumps(f.to_json(node)),
                        "has_events": f.has_events(node),
                        "now": now,
                    },
                )
    finally:
        await engine.dispose()


async def _event_types(url: str) -> dict[str, list[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT id, event_types FROM marketing_segment WHERE id = ANY(:ids)"),
                {"ids": list(SEGMENTS)},
            )
            return {row[0]: list(row[1]) for row in rows}
    finally:
        await engine.dispose()


def test_segments_made_before_learn_their_event_types(database_url: str) -> None:
    with own_database(database_url, "segment_pending_migration") as url:
        migrate.downgrade(url, "0005")
        asyncio.run(_insert(url))
        migrate.upgrade(url)
        assert asyncio.run(_event_types(url)) == {
            "nested": ["placed_order", "product_viewed"],
            "plain": [],
        }
        assert {k: sorted(v) for k, v in asyncio.run(_event_types(url)).items()} == {
            segment_id: sorted(f.event_types(node)) for segment_id, node in SEGMENTS.items()
        }
        migrate.downgrade(url, "0005")
        migrate.upgrade(url)
