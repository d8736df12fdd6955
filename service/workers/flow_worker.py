"""The flow worker: takes the durable timers that fell due (service.flows.timers)
and acts on them (service.flows.firing), the segment joins and leaves flows
wait for (service.flows.segment_signals), and the waitlist subscriptions a
restock picked (service.waitlists.notifying), a batch per transaction.
Between batches it sleeps until the earliest timer is due, but never longer
than `max_sleep_s`, so a timer armed meanwhile for sooner, or a signal, waits
at most that (no LISTEN/NOTIFY: timers are armed by many transactions, most
for an hour or more ahead). A restock is one transaction, the start of a
large batch of work: it wakes the waitlist loops at once
(service.storage.listening). Replicas take disjoint rows (SKIP LOCKED); after
an outage the backlog is worked off oldest first, at full speed. The polls run
on plans made for each run (service.storage.fresh_plans): the tables they read
go from empty to a million rows and back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from marketing_runtime.clock import Clock

from service.flows import firing, segment_signals, timers
from service.flows.enrolments import BEGUN_PER_MESSAGE
from service.storage.database import Database
from service.storage.listening import listen
from service.waitlists import notifying
from service.waitlists.restocks import RESTOCKED
from service.workers.repeat import Wakeup, backoff_s, repeat

_LOCKED_ELSEWHERE_S = 0.02


@dataclass(frozen=True)
class TimerSettings:
    batch: int = 500  # MARKETING_TIMER_BATCH
    waitlist_batch: int = 2_000  # MARKETING_WAITLIST_BATCH
    waitlist_concurrency: int = 3  # MARKETING_WAITLIST_CONCURRENCY
    max_sleep_s: float = 0.25  # MARKETING_TIMER_MAX_SLEEP_S


DEFAULT_TIMER_SETTINGS = TimerSettings()


class FlowWorker:
    def __init__(
        self, db: Database, clock: Clock, settings: TimerSettings = DEFAULT_TIMER_SETTINGS
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._stopping = asyncio.Event()
        self._restocked = Wakeup()

    async def run(self) -> None:
        """A loop per kind of work, so that a batch that keeps failing holds up
        only its own kind; waitlist batches several side by side (each takes
        rows the others skip), so that a large restock keeps PostgreSQL and
        this process busy at once."""
        waitlists = (self._waitlist_loop() for _ in range(self._settings.waitlist_concurrency))
        await asyncio.gather(
            listen(
                self._db, RESTOCKED, lambda _: self._restocked.fire(), self._stopping, backoff_s
            ),
            repeat("flow worker: timers", self.fire_due_once, self._timer_pause, self._stopping),
            repeat("flow worker: segments", self.drain_signals_once, self._pause, self._stopping),
            *waitlists,
        )

    async def _timer_pause(self, taken: int) -> float:
        """None while batches come back full: a backlog is worked off at full
        speed; else until the earliest timer is due, at most `max_sleep_s`."""
        return 0.0 if taken >= self._settings.batch else await self._until_next_due()

    async def _pause(self, taken: int) -> float:
        return 0.0 if taken >= self._settings.batch else self._settings.max_sleep_s

    async def _waitlist_loop(self) -> None:
        """One of the loops notifying waitlists. Its first batch after a pause holds a
        message's worth of beginnings (a bulk job), and each batch after a full one
        `waitlist_batch`: a restock's first notifications commit, and go on to the
        provider, in about half the time a full batch takes (a large waitlist's pace is
        the provider's from its first call), and the rest go in the batches that work
        it off fastest."""
        first = min(self._settings.waitlist_batch, BEGUN_PER_MESSAGE)
        full = False  # whether the last batch took all it asked for

        async def step() -> int:
            nonlocal full
            asked = self._settings.waitlist_batch if full else first
            taken = await self.notify_once(asked)
            full = taken >= asked
            return taken

        async def pause(_: int) -> float:
            return 0.0 if full else self._settings.max_sleep_s

        await repeat("flow worker: waitlists", step, pause, self._stopping, wake=self._restocked)

    async def fire_due_once(self) -> int:
        """One batch of due timers fired; how many."""
        async with self._db.transaction() as session:
            now = self._clock()
            fired = await timers.take_due(session, now, self._settings.batch)
            await firing.fire(session, fired, now)
            return len(fired)

    async def drain_signals_once(self) -> int:
        """One batch of segment joins and leaves acted on; how many."""
        async with self._db.transaction() as session:
            signals = await segment_signals.take(session, self._settings.batch)
            await segment_signals.act(session, signals, self._clock())
            return len(signals)

    async def notify_once(self, most: int | None = None) -> int:
        """One batch of waitlist subscriptions a restock picked, notified (at most
        `most`, by default `waitlist_batch`)."""
        limit = self._settings.waitlist_batch if most is None else most
        async with self._db.transaction() as session:
            return await notifying.notify_once(session, self._clock(), limit)

    async def notify_all(self) -> int:
        return await _until_none_left(self.notify_once)

    async def drain_all_signals(self) -> int:
        return await _until_none_left(self.drain_signals_once)

    async def fire_all_due(self) -> int:
        """Every timer due by the clock fired (tests, tools); how many."""
        return await _until_none_left(self.fire_due_once)

    async def _until_next_due(self) -> float:
        horizon = self._clock() + timedelta(seconds=self._settings.max_sleep_s)
        async with self._db.transaction() as session:
            due = await timers.next_due(session, before=horizon)
        if due is None:
            return self._settings.max_sleep_s
        # A timer due already was locked by another replica's batch: a moment.
        wait_s = (due - self._clock()).total_seconds()
        return min(max(wait_s, _LOCKED_ELSEWHERE_S), self._settings.max_sleep_s)

    def stop(self) -> None:
        self._stopping.set()


async def _until_none_left(step: Callable[[], Awaitable[int]]) -> int:
    """`step` until it finds nothing (tests, tools); how many it took in all."""
    total = 0
    while taken := await step():
        total += taken
    return total
