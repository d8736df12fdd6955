"""Statements that poll a queue table, each run on a plan made for it now.

The background loops poll their queue tables (due timers, segment signals,
the waitlist subscriptions a restock picked, the outbox, the contacts waiting
for segment evaluation or attribution) several times a second, on
connections that live for days. PostgreSQL may run a prepared statement on a
cached generic plan from its sixth run on. One made while an analysed table
was empty scans the table whole, and a take-and-delete, or a match against a
batch's ids, joins it with itself: in the bench, once a million timers had
been set, one batch of 500 ran for 88 s, until autovacuum analysed the table.
`execute_afresh` plans the statement for its parameters and the tables'
sizes at the time, and reads the index.

Only the polls pay for it (one statement's planning and two SETs a batch):
planning every statement of a waitlist batch afresh cost PostgreSQL about a
quarter more CPU. A statement without parameters always runs on a cached
plan, so a poll gives its statement one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Executable, Result, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_PLAN_NOW = text("SET LOCAL plan_cache_mode = force_custom_plan")
_PLAN_AS_CONFIGURED = text("SET LOCAL plan_cache_mode TO DEFAULT")


async def execute_afresh(
    runner: AsyncSession | AsyncConnection,
    statement: Executable,
    params: Mapping[str, Any] | None = None,
) -> Result[*tuple[Any, ...]]:
    """`runner.execute(statement, params)` on a plan made for this run; the
    transaction's later statements are planned as configured."""
    await runner.execute(_PLAN_NOW)
    result = await runner.execute(statement, params)
    await runner.execute(_PLAN_AS_CONFIGURED)
    return result
