"""Waking the workers' loops: a `Wakeup` ends a loop's pause at once, also when it
fires while the loop is in a step (no firing is lost between a step and its pause),
and PostgreSQL's notifications fire it on commit only, in commit order, also after
the listening connection was lost (service.storage.listening)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import text

from service.storage.database import Database
from service.storage.listening import LISTENING, listen, notify
from service.workers.repeat import Wakeup, repeat
from tests.harness import until_true

LONG_PAUSE_S = 60.0  # what a loop would wait without the wake-up: far past every timeout


def _looping(
    wake: Wakeup, on_step: Callable[[int], None] = lambda _: None
) -> tuple[list[int], asyncio.Event, Callable[[], Coroutine[Any, Any, None]]]:
    steps: list[int] = []
    stopping = asyncio.Event()

    async def step() -> int:
        steps.append(len(steps))
        on_step(len(steps))
        return 0

    async def pause(_: int) -> float:
        return LONG_PAUSE_S

    return steps, stopping, lambda: repeat("test", step, pause, stopping, wake=wake)


def test_a_firing_ends_every_loops_pause() -> None:
    async def main() -> None:
        wake = Wakeup()
        first, stop_first, loop_first = _looping(wake)
        second, stop_second, loop_second = _looping(wake)
        tasks = [asyncio.create_task(loop_first()), asyncio.create_task(loop_second())]
        await until_true(lambda: len(first) == 1 and len(second) == 1)
        wake.fire()
        await until_true(lambda: len(first) == 2 and len(second) == 2, timeout_s=10)
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

    asyncio.run(main())


def test_a_firing_during_a_step_is_not_lost() -> None:
    async def main() -> None:
        wake = Wakeup()
        # The work's notification comes while the step that missed the work runs.
        steps, stopping, loop = _looping(wake, lambda n: wake.fire() if n == 1 else None)
        task = asyncio.create_task(loop())
        await until_true(lambda: len(steps) == 2, timeout_s=10)
        stopping.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())


def test_notifications_fire_on_commit_only_in_commit_order(database_url: str) -> None:
    async def scenario(db: Database, channel: str, seen: list[str]) -> None:
        try:
            async with db.transaction() as session:
                await notify(session, channel, "undone")
                raise _Undone
        except _Undone:
            pass
        for payload in ("kept", "last"):
            async with db.transaction() as session:
                await notify(session, channel, payload)
        # In commit order: once the last is here, any other would have come before it.
        await until_true(lambda: "last" in seen, timeout_s=10)
        assert seen == [LISTENING, "kept", "last"]

    _listening(database_url, scenario)


def test_listening_outlives_a_lost_connection(database_url: str) -> None:
    """The server ends the listening connection: the listener listens again on a new
    one (and says so, LISTENING), and the next notification still comes."""

    async def scenario(db: Database, channel: str, seen: list[str]) -> None:
        async with db.transaction() as session:
            ended = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE query = :listen"
                ),
                {"listen": f'LISTEN "{channel}"'},
            )
        assert ended == 1
        await until_true(lambda: seen == [LISTENING, LISTENING], timeout_s=20)
        async with db.transaction() as session:
            await notify(session, channel, "after")
        await until_true(lambda: seen == [LISTENING, LISTENING, "after"], timeout_s=10)

    _listening(database_url, scenario)


def _listening(
    database_url: str,
    scenario: Callable[[Database, str, list[str]], Coroutine[Any, Any, None]],
) -> None:
    """`scenario(db, channel, payloads seen)` once a listener listens on a channel of
    its own; the listener stopped afterwards."""
    channel = f"test_{uuid.uuid4().hex[:12]}"

    async def main() -> None:
        db = Database(database_url)
        seen: list[str] = []
        stopping = asyncio.Event()
        listening = asyncio.create_task(listen(db, channel, seen.append, stopping, lambda _: 0.1))
        try:
            await until_true(lambda: seen == [LISTENING])
            await scenario(db, channel, seen)
        finally:
            stopping.set()
            await asyncio.wait_for(listening, 20)
            await db.close()

    asyncio.run(main())


class _Undone(Exception):
    pass
