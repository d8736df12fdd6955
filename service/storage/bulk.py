"""Many rows written by one statement whose parameters are one array per column
(`INSERT ... SELECT ... FROM unnest(...)`, `UPDATE ... FROM unnest(...)`), or
copied (`copy_new_rows`: a binary COPY, for the largest batches of new rows).

As an executemany, a batch of 2,000 rows is 2,000 parameter sets that SQLAlchemy
processes and PostgreSQL executes one by one; measured on the waitlist's
notifications, that was more than half of the flow worker's time. Here
SQLAlchemy binds one array per column and the server runs one plan over the
whole set. Rows are inserted in the order given (WITH ORDINALITY ... ORDER BY),
so identity columns (the outbox's `seq`) number them in that order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import ARRAY, bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB, Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.storage.database import json_text
from service.storage.models import Base

_ORDINAL = "ordinal"
# Rows from which a column shared by all is bound once (`insert_rows`): below, a
# column may be shared by chance (a few rows' None or ""), and each pattern of
# shared columns is a statement of its own for the driver to prepare.
BOUND_ONCE_FROM = 64


def rows_table(model: type[Base], columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Any:
    """`rows` as a derived table `r(<columns>, ordinal)`, each column bound as an
    array of the type of `model`'s column of that name."""
    table = model.__table__
    arrays = [
        bindparam(None, [row[name] for row in rows], ARRAY(table.c[name].type)) for name in columns
    ]
    return (
        func.unnest(*arrays)
        .table_valued(*columns, with_ordinality=_ORDINAL)
        .render_derived("r", with_types=False)
    )


def insert_rows(model: type[Base], rows: Sequence[Mapping[str, Any]]) -> Insert:
    """One INSERT of `rows` (each with the same keys), in their order. Columns
    not given take their scalar defaults (SQLAlchemy adds them to the SELECT);
    give every column whose default is a callable (ids). A column whose rows
    all hold the same object (a batch's flow, state and time, say; from
    BOUND_ONCE_FROM rows) is bound once, not as an array: the driver checks
    each element of an array on its way, and the server unnests one array
    fewer. The result takes `on_conflict_*` and `returning` like any
    PostgreSQL insert."""
    columns = list(rows[0])
    varying = columns
    if len(rows) >= BOUND_ONCE_FROM:
        varying = [name for name in columns if not _shared(rows, name)] or columns
    source = rows_table(model, varying, rows)
    table = model.__table__
    chosen = select(
        *(
            source.c[name] if name in varying else _bound_once(table.c[name], rows[0][name])
            for name in columns
        )
    ).order_by(source.c[_ORDINAL])
    return pg_insert(model).from_select(columns, chosen)


def _shared(rows: Sequence[Mapping[str, Any]], name: str) -> bool:
    """Whether every row holds the very same object under `name` (identity, not
    equality: cheap, and never wrong)."""
    first = rows[0][name]
    return all(row[name] is first for row in rows)


def _bound_once(column: Any, value: Any) -> Any:
    """`value` as one parameter of `column`'s type, named as the column."""
    return cast(bindparam(None, value, column.type), column.type).label(column.name)


async def copy_new_rows(
    session: AsyncSession, model: type[Base], rows: Sequence[Mapping[str, Any]]
) -> bool:
    """`rows` (each with the same keys, and every column whose default is
    SQLAlchemy's, not the server's, given: ids) written by one binary COPY, in a
    savepoint of the session's transaction: True once they are. False, with none
    of them written and the transaction going on, when any breaks a constraint (a
    unique key a concurrent transaction took, a contact erased meanwhile): the
    caller then writes them by `insert_rows`, which says which and why as
    SQLAlchemy does. Values go as they are: no SQLAlchemy type processing but
    JSONB's (the engine's own serializer).

    For the many rows of one decision: PostgreSQL spends about a fifth less on
    a row it is sent by COPY than on one an INSERT unnests from arrays, and the
    driver encodes each value by its column's type without checking, for every
    element of an array, whether it is itself one (README, figure 10)."""
    table = model.__table__
    columns = list(rows[0])
    as_json = {name for name in columns if isinstance(table.c[name].type, JSONB)}
    records = [
        tuple(json_text(row[name]) if name in as_json else row[name] for name in columns)
        for row in rows
    ]
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    try:
        # The connection's savepoint, emitted at once (it also begins the
        # transaction when the COPY is its first statement); the session's
        # begin_nested would emit nothing until the session ran a statement.
        async with connection.begin_nested():
            await driver.copy_records_to_table(
                model.__tablename__, columns=columns, records=records
            )
    except asyncpg.IntegrityConstraintViolationError:
        return False
    return True
