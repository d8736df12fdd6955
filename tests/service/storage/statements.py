"""Plain SQL against a migration test's own database, one transaction a call."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def run_sql_async(url: str, first: str, *more: str, **params: object) -> object:
    """The statements in one transaction; the last one's single value, if it has one."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in (first, *more):
                result = await conn.execute(text(statement), params)
            return result.scalar_one_or_none() if result.returns_rows else None
    finally:
        await engine.dispose()


def run_sql(url: str, first: str, *more: str, **params: object) -> object:
    """`run_sql_async` from synchronous code."""
    return asyncio.run(run_sql_async(url, first, *more, **params))
