"""What the recorders of one kind of result share: a batch of messages parsed, applied
in one transaction, then acked. A message that is not the kind is logged and acked (it
never will be); while the database is unavailable the whole batch is nak'ed, to be
delivered again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError, Message
from nats.aio.msg import Msg
from sqlalchemy.ext.asyncio import AsyncSession

from service.errors import UnavailableError
from service.storage.database import Database
from service.workers.event_log_writer import DB_RETRY_DELAY_S

log = logging.getLogger(__name__)
ResultT = TypeVar("ResultT", bound=Message)


class BatchRecorder(Generic[ResultT]):
    def __init__(
        self,
        db: Database,
        name: str,
        kind: type[ResultT],
        apply: Callable[[AsyncSession, ResultT], Awaitable[object]],
        *,
        in_transaction: Callable[[AsyncSession], None] = lambda session: None,
        after: Callable[[], None] = lambda: None,
    ) -> None:
        """`apply` each result; `in_transaction` runs last inside the batch's transaction
        (to register after-commit hooks, say), `after` once the batch is acked."""
        self._db = db
        self._name = name
        self._kind = kind
        self._apply = apply
        self._in_transaction = in_transaction
        self._after = after

    async def handle(self, messages: list[Msg]) -> None:
        results = [self._parse(msg) for msg in messages]
        try:
            async with self._db.transaction() as session:
                for result in results:
                    if result is not None:
                        await self._apply(session, result)
                self._in_transaction(session)
        except UnavailableError as exc:
            log.warning("%s: %s", self._name, exc)
            for msg in messages:
                await msg.nak(delay=DB_RETRY_DELAY_S)
            return
        for msg in messages:
            await msg.ack()
        self._after()

    def _parse(self, msg: Msg) -> ResultT | None:
        result = self._kind()
        try:
            result.ParseFromString(msg.data)
        except DecodeError as exc:
            log.warning("%s: an unreadable result dropped: %s", self._name, exc)
            return None
        return result
