"""The connection pool and the one way domain code opens a transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from service.errors import UnavailableError

# Errors that mean "PostgreSQL cannot be reached right now", as opposed to a bug
# or a constraint violation: the caller may retry them.
_CONNECTION_ERRORS = (OperationalError, InterfaceError, OSError, ConnectionError)


_AFTER_COMMIT = "marketing_after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed (never on
    rollback): for metrics and wake-ups that must not count what was undone."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _CONNECTION_ERRORS)


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout_s: float = 5.0) -> None:
        self.engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args={"timeout": connect_timeout_s},
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back
        on any error, so a rejected call leaves nothing half-written."""
        try:
            async with self._sessions() as session:
                async with session.begin():
                    yield session
                for callback in session.info.pop(_AFTER_COMMIT, []):
                    callback()
        except Exception as exc:
            if _is_connection_error(exc):
                raise UnavailableError(dependency="postgresql", detail=str(exc)) from exc
            raise

    async def close(self) -> None:
        await self.engine.dispose()
