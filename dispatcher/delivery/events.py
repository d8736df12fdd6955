"""Delivers behavioural events in bulk. Events need no ordering, so any number
of replicas share the consumer; retries are nak'ed with the backoff delay.

A batch in hand is kept alive (+WPI) while it waits for the provider, e.g.
out a Retry-After longer than the ack wait, so JetStream does not hand it to
another loop or replica as well; each message stops being kept alive once it
is acked or nak'ed. Nothing is sent once the connection the batch came on
has closed for good: JetStream hands it to another replica then."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

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
from dispatcher.providers.base import CREATE_EVENTS, OperationLimits, Provider, TrackedEvent
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError

log = logging.getLogger(__name__)
Item = tuple[Msg, bus_pb2.Delivery]


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
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._provider = provider
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

    async def handle(self, messages: list[Msg]) -> None:
        items = [(msg, parse_delivery(msg.data)) for msg in messages]
        ended = self._connection_ended()  # of the connection these came on
        async with holding(
            messages, every_s=self._keepalive_s, sleep=self._sleep, ended=ended
        ) as held:
            try:
                items = await self._drop_erased(held, items)
                for chunk in _chunks(items, self._provider.limits.create_events):
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

    async def _deliver(self, held: Holding, chunk: list[Item]) -> None:
        events: list[TrackedEvent] = []
        for msg, delivery in chunk:
            try:
                events.append(translate.tracked_event(delivery))
            except (KeyError, ValueError, TypeError) as exc:  # a payload we cannot read
                await self._give_up(held, [(msg, delivery)], f"unreadable payload: {exc!r}")
                rest = [item for item in chunk if item[0] is not msg]
                return await self._deliver(held, rest)
        if not events:
            return None
        try:
            await self._gate.call(
                CREATE_EVENTS,
                len(events),
                lambda: self._provider.create_events(events),
                guard=held.ensure_connected,
            )
        except RetryableProviderError as exc:
            return await self._retry_later(held, chunk, exc)
        except PermanentProviderError as exc:
            return await self._isolate(held, chunk, exc)
        await self._settle(held, chunk, bus_pb2.OUTCOME_DELIVERED, "")
        return None

    async def _retry_later(
        self, held: Holding, chunk: list[Item], exc: RetryableProviderError
    ) -> None:
        spent: list[Item] = []
        for item in chunk:
            attempt = _attempt(item)
            if exhausted(attempt, max_attempts=self._max_attempts):
                spent.append(item)
            else:
                delay = retry_delay(attempt, retry_after=exc.retry_after, base_s=self._base_s)
                held.settled([item[0]])
                await item[0].nak(delay=delay)
        if spent:
            await self._give_up(held, spent, str(exc))

    async def _isolate(self, held: Holding, chunk: list[Item], exc: PermanentProviderError) -> None:
        """Find the events the provider refused; deliver the others."""
        narrowed = narrow(chunk, exc.item_indexes)
        if narrowed.failed:
            await self._give_up(held, narrowed.failed, str(exc))
        for group in narrowed.retry:
            await self._deliver(held, group)

    async def _give_up(self, held: Holding, items: list[Item], error: str) -> None:
        log.warning("dead-lettering %d events: %s", len(items), error)
        await self._settle(held, items, bus_pb2.OUTCOME_FAILED, error)

    async def _settle(self, held: Holding, items: list[Item], outcome: int, error: str) -> None:
        await self._reporter.report(
            [
                Outcome(delivery, outcome, _attempt((msg, delivery)), error=error)
                for msg, delivery in items
            ]
        )
        messages = [msg for msg, _ in items]
        held.settled(messages)
        await ack_all(messages)


def _attempt(item: Item) -> int:
    return int(item[0].metadata.num_delivered or 1)


def _chunks(items: list[Item], limits: OperationLimits) -> Iterator[list[Item]]:
    """Calls of at most `limits.max_items` events and `limits.payload_bytes` payload bytes
    (an event larger than that goes alone: the provider says whether it takes it)."""
    budget = limits.payload_bytes
    chunk: list[Item] = []
    chunk_bytes = 0
    for item in items:
        item_bytes = item[1].ByteSize()
        full = len(chunk) >= limits.max_items
        if chunk and (full or (budget is not None and chunk_bytes + item_bytes > budget)):
            yield chunk
            chunk, chunk_bytes = [], 0
        chunk.append(item)
        chunk_bytes += item_bytes
    if chunk:
        yield chunk
