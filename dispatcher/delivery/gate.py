"""Every provider call passes the gate: it is timed, it reserves its call in the
shared provider budget (`dispatcher.budget`: every replica together stays within
each rate bucket's windows), and after a 429 no call to the same endpoint is
made before the provider's Retry-After has passed, by any replica. Limits are
per endpoint (Klaviyo: each has its own windows), so a throttled events
endpoint does not hold up unsubscribes or erasures. An operation name
(`create_events`, `subscribe`, ...) stands for one provider endpoint.

The gate also keeps a pause of its own after any Retry-After: it needs no round
trip to honour, and holds while NATS (and so the shared budget) is away."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from marketing_runtime.clock import Sleep

from dispatcher import metrics
from dispatcher.budget import SharedBudget
from dispatcher.providers.errors import ProviderError, RetryableProviderError

T = TypeVar("T")
log = logging.getLogger(__name__)
# The longest pause one Retry-After can ask for. Klaviyo's windows are a
# second and a minute; a larger value (garbled, or an HTTP date far ahead)
# would otherwise stop an endpoint, say unsubscribes, for as long as it says.
MAX_RETRY_AFTER_S = 300.0


class ProviderGate:
    def __init__(
        self, *, monotonic: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._not_before: dict[str, float] = {}
        self._budget: SharedBudget | None = None

    def share(self, budget: SharedBudget) -> None:
        """Draw from `budget` from now on (made again on each NATS connection)."""
        self._budget = budget

    async def call(
        self,
        operation: str,
        size: int,
        call: Callable[[], Awaitable[T]],
        *,
        guard: Callable[[], None] = lambda: None,
        paced: bool = False,
        bulk: bool = False,
    ) -> T:
        """`guard` runs right before the request (after any wait) and may raise
        to call it off, e.g. when the caller has lost its lease meanwhile. A
        retryable error leaves the gate with its `retry_after` capped. `paced`:
        the call carries less than it could, so it also keeps the budget's
        steady pace (see `SharedBudget.acquire`). `bulk`: bulk work whatever
        the operation, e.g. a full sync's consent calls: it leaves the
        compliance share of the operation's buckets to live compliance work."""
        await self._wait_for_room(operation, paced=paced, bulk=bulk)
        guard()
        started = self._monotonic()
        metrics.BATCH_SIZE.labels(operation).observe(size)
        try:
            result = await call()
        except RetryableProviderError as exc:
            if exc.retry_after:
                exc.retry_after = _capped(operation, exc.retry_after)
                await self._pause(operation, exc.retry_after, shared=exc.status == 429)
            metrics.RETRIES.labels(operation).inc()
            self._observe(operation, "retryable", started)
            raise
        except ProviderError:
            self._observe(operation, "permanent", started)
            raise
        self._observe(operation, "ok", started)
        return result

    async def _wait_for_room(self, operation: str, *, paced: bool, bulk: bool) -> None:
        """Wait out any pause, then reserve the call in the shared budget. Another
        call may be throttled while this one waits: wait again. A reservation
        that took too long to get (another bucket of the call was full) is
        given back and taken again: the provider would see the call later than
        the budget counted it."""
        while True:
            while (wait := self.pause_left(operation)) > 0:
                await self._sleep(wait)
            budget = self._budget
            if budget is None or not budget.covers(operation):
                return
            reservation = await budget.acquire(operation, paced=paced, bulk=bulk)
            if budget.fresh(reservation) and self.pause_left(operation) <= 0:
                return
            metrics.BUDGET_STALE.labels(operation).inc()
            await budget.release(reservation)

    async def _pause(self, operation: str, retry_after: float, *, shared: bool) -> None:
        not_before = self._monotonic() + retry_after
        self._not_before[operation] = max(self._not_before.get(operation, 0.0), not_before)
        if shared and self._budget is not None and self._budget.covers(operation):
            try:
                await self._budget.throttled(operation, retry_after)
            except Exception as exc:  # the local pause holds; the 429 is what the caller needs
                log.warning("%s: cannot share the pause (%r)", operation, exc)

    def pause_left(self, operation: str, *more: str) -> float:
        """Seconds until each of these operations takes calls again (0: now), by
        this replica's pauses and the shared ones it has seen. Consumers fetch
        nothing meanwhile: what they fetched would only wait here."""
        now, budget = self._monotonic(), self._budget
        operations = (operation, *more)
        local = (self._not_before.get(op, 0.0) - now for op in operations)
        shared = (budget.pause_left(op) for op in operations) if budget is not None else ()
        return max(0.0, *local, *shared)

    async def fill_wait(self, operation: str) -> float:
        """Seconds until a call of `operation` is available at the budget's steady
        pace (0: now): a batch not yet full may keep filling meanwhile."""
        budget = self._budget
        if budget is None or not budget.covers(operation):
            return self.pause_left(operation)
        return max(self.pause_left(operation), await budget.fill_wait(operation))

    def _observe(self, operation: str, result: str, started: float) -> None:
        metrics.PROVIDER_CALLS.labels(operation, result).observe(self._monotonic() - started)


def _capped(operation: str, retry_after: float) -> float:
    if retry_after <= MAX_RETRY_AFTER_S:
        return retry_after
    log.warning(
        "%s: the provider asked to wait %.0f s; waiting %.0f s (the cap)",
        operation,
        retry_after,
        MAX_RETRY_AFTER_S,
    )
    return MAX_RETRY_AFTER_S
