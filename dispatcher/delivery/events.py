"""Delivers behavioural events in bulk. Events need no ordering, so any number
of replicas share the consumer; retries are nak'ed with the backoff delay.

A batch in hand is kept alive (+WPI) while it waits for the provider, e.g.
out a Retry-After longer than the ack wait, so JetStream does not hand it to
another loop or replica as well; each message stops being kept alive once it
is acked or nak'ed. Nothing is sent once the connection the batch came on
has closed for good: JetStream hands it to another replica then.

When calls are the scarce resource, batches fill up: the consume loop asks
`fill_wait` before handing over a batch that is not full, and keeps fetching
while no call is available at the budget's steady pace; a call that still goes
out less than full reserves `paced`, so replicas at low load spread the
window's calls over it instead of spending them on small batches at its start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator

from marketing.bus.v1 import bus_pb2
from marketing_runtime.acks import ack_all
from marketing_runtime.clock import Sleep
from marketing_runtime.envelope import parse_delivery
from marketing_runtime.timestamps import epoch_seconds
from nats.aio.msg import Msg

from dispatcher.delivery import translate
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import ConnectionEnded, Holding, Interval, holding
from dispatcher.delivery.narrowing import narrow
from dispatcher.delivery.outcomes import Outcome, Reporter
from dispatcher.delivery.retry import exhausted, retry_delay
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.providers.base import CREATE_EVENTS, OperationLimits, PreparedEvent, Provider
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError

log = logging.getLogger(__name__)
Item = tuple[Msg, bus_pb2.Delivery]
# An item whose event the provider has encoded, once, for the calls that carry it.
Ready = tuple[Msg, bus_pb2.Delivery, PreparedEvent]
# A batch this close to a call's byte limit counts as full: the next event may not fit.
FULL_SHARE = 0.9
# Events in the call's JSON take about twice their bytes on the bus (typed bodies).
JSON_PER_BUS_BYTE = 2


class EventsWorker:
    def __init__(
        self,
        provider: Provider,
        reporter: Reporter,
        gate: ProviderGate,
        erasures: ErasureMarks,
        *,
        connection_ended: Callable[[], asyncio.Event],
        max_attempts: int,
        backoff_base_s: float,
        keepalive_s: Interval,
        full_batch: int | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`full_batch`: the events a call carries when work is waiting (the
        fetched batch; by default all a call may take)."""
        self._provider = provider
        limits = provider.limits.create_events
        self._full_items = min(full_batch or limits.max_items, limits.max_items)
        self._full_bytes = None if limits.max_bytes is None else limits.max_bytes * FULL_SHARE
        self._connection_ended = connection_ended
        self._reporter = reporter
        self._gate = gate
        self._erasures = erasures
        self._max_attempts = max_attempts
        self._base_s = backoff_base_s
        self._keepalive_s = keepalive_s
        self._sleep = sleep

    def pause_left(self) -> float:
        """Seconds the provider still throttles our endpoint (see ProviderGate)."""
        return self._gate.pause_left(CREATE_EVENTS)

    async def fill_wait(self, messages: list[Msg]) -> float:
        """Seconds a call for this batch would wait for the budget's pace (0: the
        batch is full, or the call is available now)."""
        if len(messages) >= self._full_items or self._looks_full(messages):
            return 0.0
        try:
            return await self._gate.fill_wait(CREATE_EVENTS)
        except Exception as exc:  # the budget is away: send what is in hand
            log.warning("cannot read the budget (%r): sending the batch as it is", exc)
            return 0.0

    def _looks_full(self, messages: list[Msg]) -> bool:
        """By bus bytes, which are about half the bytes of the call's JSON."""
        if self._full_bytes is None:
            return False
        return sum(len(msg.data) for msg in messages) * JSON_PER_BUS_BYTE >= self._full_bytes

    async def handle(self, messages: list[Msg]) -> None:
        items = [(msg, parse_delivery(msg.data)) for msg in messages]
        ended = self._connection_ended()  # of the connection these came on
        async with holding(
            messages, every_s=self._keepalive_s, sleep=self._sleep, ended=ended
        ) as held:
            try:
                items = await self._drop_erased(held, items)
                ready = await self._prepare(held, items)
                for chunk in _chunks(ready, self._provider.limits.create_events):
                    await self._deliver(held, chunk)
            except ConnectionEnded:
                count = await held.hand_back()
                log.warning("NATS connection ended mid-batch: %d events handed back unsent", count)

    async def _drop_erased(self, held: Holding, items: list[Item]) -> list[Item]:
        """Events of a person erased after they were accepted are not sent."""
        if not self._erasures:
            return items
        erased = [
            (msg, d)
            for msg, d in items
            if self._erasures.erased_since(d.contact_key, epoch_seconds(d.create_time))
        ]
        if erased:
            await self._settle(held, erased, bus_pb2.OUTCOME_SUPERSEDED, "person erased")
        return [item for item in items if item not in erased]

    async def _prepare(self, held: Holding, items: list[Item]) -> list[Ready]:
        """Each event as the provider will send it; one it cannot read or encode fails."""
        ready: list[Ready] = []
        failed: list[tuple[Item, str]] = []
        for msg, delivery in items:
            try:
                prepared = self._provider.prepare_event(translate.tracked_event(delivery))
            except (KeyError, ValueError, TypeError) as exc:  # a payload we cannot read
                failed.append(((msg, delivery), f"unreadable payload: {exc!r}"))
            except PermanentProviderError as exc:
                failed.append(((msg, delivery), str(exc)))
            else:
                ready.append((msg, delivery, prepared))
        for item, error in failed:
            await self._give_up(held, [item], error)
        return ready

    async def _deliver(self, held: Holding, chunk: list[Ready]) -> None:
        events = [prepared for _, _, prepared in chunk]
        full = len(events) >= self._full_items or (
            self._full_bytes is not None and sum(e.size for e in events) >= self._full_bytes
        )
        try:
            await self._gate.call(
                CREATE_EVENTS,
                len(events),
                lambda: self._provider.create_events(events),
                guard=held.ensure_connected,
                paced=not full,
            )
        except RetryableProviderError as exc:
            return await self._retry_later(held, chunk, exc)
        except PermanentProviderError as exc:
            return await self._isolate(held, chunk, exc)
        await self._settle(held, _items(chunk), bus_pb2.OUTCOME_DELIVERED, "")
        return None

    async def _retry_later(
        self, held: Holding, chunk: list[Ready], exc: RetryableProviderError
    ) -> None:
        spent: list[Item] = []
        for msg, delivery, _ in chunk:
            attempt = _attempt(msg)
            if exhausted(attempt, max_attempts=self._max_attempts):
                spent.append((msg, delivery))
            else:
                delay = retry_delay(attempt, retry_after=exc.retry_after, base_s=self._base_s)
                held.settled([msg])
                await msg.nak(delay=delay)
        if spent:
            await self._give_up(held, spent, str(exc))

    async def _isolate(
        self, held: Holding, chunk: list[Ready], exc: PermanentProviderError
    ) -> None:
        """Find the events the provider refused; deliver the others."""
        narrowed = narrow(chunk, exc.item_indexes)
        if narrowed.failed:
            await self._give_up(held, _items(narrowed.failed), str(exc))
        for group in narrowed.retry:
            await self._deliver(held, group)

    async def _give_up(self, held: Holding, items: list[Item], error: str) -> None:
        log.warning("dead-lettering %d events: %s", len(items), error)
        await self._settle(held, items, bus_pb2.OUTCOME_FAILED, error)

    async def _settle(self, held: Holding, items: list[Item], outcome: int, error: str) -> None:
        await self._reporter.report(
            [Outcome(delivery, outcome, _attempt(msg), error=error) for msg, delivery in items]
        )
        messages = [msg for msg, _ in items]
        held.settled(messages)
        await ack_all(messages)


def _attempt(msg: Msg) -> int:
    return int(msg.metadata.num_delivered or 1)


def _items(ready: Iterable[Ready]) -> list[Item]:
    return [(msg, delivery) for msg, delivery, _ in ready]


def _chunks(ready: list[Ready], limits: OperationLimits) -> Iterator[list[Ready]]:
    """Calls of at most `limits.max_items` events whose prepared sizes, with the call's
    wrapping, add up to at most `limits.max_bytes`: the body the provider receives (an
    event larger than that goes alone: the provider says whether it takes it)."""
    budget = None if limits.max_bytes is None else limits.max_bytes - limits.wrapping_bytes
    chunk: list[Ready] = []
    chunk_bytes = 0
    for item in ready:
        size = item[2].size
        full = len(chunk) >= limits.max_items
        if chunk and (full or (budget is not None and chunk_bytes + size > budget)):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append(item)
        chunk_bytes += size
    if chunk:
        yield chunk
