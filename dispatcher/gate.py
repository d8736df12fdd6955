"""Every provider call passes the gate: it is timed, and after a 429 no call
is made before the provider's Retry-After has passed (limits are per account,
so one throttled call speaks for all)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from dispatcher import metrics
from dispatcher.providers.errors import ProviderError, RetryableProviderError

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class ProviderGate:
    def __init__(
        self, *, monotonic: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._not_before = 0.0

    async def call(
        self,
        operation: str,
        size: int,
        call: Callable[[], Awaitable[T]],
        *,
        guard: Callable[[], None] = lambda: None,
    ) -> T:
        """`guard` runs right before the request (after any wait) and may raise
        to call it off, e.g. when the caller has lost its lease meanwhile."""
        # Another call may be throttled while this one waits: wait again.
        while (wait := self.pause_left()) > 0:
            await self._sleep(wait)
        guard()
        started = self._monotonic()
        metrics.BATCH_SIZE.labels(operation).observe(size)
        try:
            result = await call()
        except RetryableProviderError as exc:
            if exc.retry_after:
                self._not_before = max(self._not_before, self._monotonic() + exc.retry_after)
            metrics.RETRIES.labels(operation).inc()
            self._observe(operation, "retryable", started)
            raise
        except ProviderError:
            self._observe(operation, "permanent", started)
            raise
        self._observe(operation, "ok", started)
        return result

    def pause_left(self) -> float:
        """Seconds until the provider takes calls again (0: now). Consumers fetch
        nothing meanwhile: what they fetched would only wait here."""
        return max(0.0, self._not_before - self._monotonic())

    def _observe(self, operation: str, result: str, started: float) -> None:
        metrics.PROVIDER_CALLS.labels(operation, result).observe(self._monotonic() - started)
