"""The connection pool and the one way domain code opens a transaction."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from service.errors import AbortedError, MarketingError
from service.storage.errors import sqlstate_of, storage_error

log = logging.getLogger(__name__)
T = TypeVar("T")
_AFTER_COMMIT = "marketing_after_commit"
# A transaction aborted for a race (a deadlock, a lock wait timed out, a
# serialization failure) is tried this many times in all before its caller is
# told ABORTED; between tries a short, random pause, so two that collided do
# not collide again in step.
RACE_ATTEMPTS = 3
RACE_PAUSE_S = (0.01, 0.05)


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed (never on
    rollback): for metrics and wake-ups that must not count what was undone."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def json_text(value: object) -> str:
    """A JSONB value's text, as `json.dumps` wrote it (keys that are not strings
    as strings), by orjson."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _name(work: Callable[..., object]) -> str:
    """A function's qualified name (a partial's function's), or a callable's class's."""
    target = getattr(work, "func", work)
    return str(getattr(target, "__qualname__", None) or type(target).__qualname__)


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,  # None: as many again as the pool
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size if max_overflow is None else max_overflow,
            pool_pre_ping=True,
            connect_args={"timeout": connect_timeout_s},
            # JSONB columns (custom properties, payloads) read back by orjson:
            # a full sync reads a million, and `json` took most of a read's time.
            # And written by it (events' bodies, outbox rows' JSON columns).
            json_deserializer=orjson.loads,
            json_serializer=json_text,
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # The same pool; each transaction of these sessions sees one snapshot and
        # writes nothing (`snapshot`). The options last only while the session holds
        # the connection: SQLAlchemy resets them as it goes back to the pool.
        one_moment = self.engine.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        self._snapshots = async_sessionmaker(one_moment, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back
        on any error, so a rejected call leaves nothing half-written."""
        async with self._in_transaction(self._sessions) as session:
            yield session

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """A read-only session whose statements all see one snapshot (REPEATABLE
        READ): for reads that take several statements, such as a contact and the
        facts kept beside it. Under READ COMMITTED each statement sees its own
        moment, so a write committed between two of them (a one-click applied by
        the worker) would show half done. Like `transaction`, it takes a
        connection only at its first statement."""
        async with self._in_transaction(self._snapshots) as session:
            yield session

    @asynccontextmanager
    async def _in_transaction(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[AsyncSession]:
        try:
            async with sessions() as session:
                async with session.begin():
                    yield session
                for callback in session.info.pop(_AFTER_COMMIT, []):
                    callback()
        except MarketingError:
            raise
        except Exception as exc:
            # A storage failure with a meaning (unreachable, a value taken,
            # a lost race) leaves as that meaning; anything else is a bug.
            meaning = storage_error(exc)
            if meaning is None:
                raise
            raise meaning from exc

    async def retried(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = RACE_ATTEMPTS
    ) -> T:
        """`work` in one transaction, run again from the start (up to `attempts`
        tries in all) when it is aborted for a race: PostgreSQL's (a deadlock
        with a background worker, a lock wait timed out, a serialization
        failure) or the work's own AbortedError. A rolled-back try left nothing,
        so the caller need not see a race it had no part in. `work` must act
        through the session alone (after-commit callbacks run only for the try
        that commits)."""
        attempt = 1
        while True:
            try:
                async with self.transaction() as session:
                    return await work(session)
            except AbortedError as exc:
                if attempt >= attempts:
                    raise
                log.warning(
                    "%s lost a race (SQLSTATE %s: %s); running it again, try %d of %d",
                    _name(work),
                    sqlstate_of(exc) or "none",
                    exc,
                    attempt + 1,
                    attempts,
                )
                attempt += 1
                await asyncio.sleep(random.uniform(*RACE_PAUSE_S))

    async def close(self) -> None:
        await self.engine.dispose()
