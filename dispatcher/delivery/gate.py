"""Every provider call passes the gate: it is timed, and after a 429 no call
to the same endpoint is made before the provider's Retry-After has passed.
Limits are per endpoint (Klaviyo: each has its own windows), so a throttled
events endpoint does not hold up unsubscribes or erasures. An operation name
(`create_events`, `subscribe`, ...) stands for one provider endpoint."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from marketing_runtime.clock import Sleep

from dispatcher import metrics
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

    async def call(
        self,
        operation: str,
        size: int,
        call: Callable[[], Awaitable[T]],
        *,
        guard: Callable[[], None] = lambda: None,
    ) -> T:
        """`guard` runs right before the request (after any wait) and may raise
        to call it off, e.g. when the caller has lost its lease meanwhile. A
        retryable error leaves the gate with its `retry_after` capped."""
        # Another call may be throttled while this one waits: wait again.
        while (wait := self.pause_left(operation)) > 0:
            await self._sleep(wait)
        guard()
        started = self._monotonic()
        metrics.BATCH_SIZE.labels(operation).observe(size)
        try:
            result = await call()
        except RetryableProviderError as exc:
            if exc.retry_after:
                exc.retry_after = _capped(operation, exc.retry_after)
                not_before = self._monotonic() + exc.retry_after
                self._not_before[operation] = max(self._not_before.get(operation, 0.0), not_before)
            metrics.RETRIES.labels(operation).inc()
            self._observe(operation, "retryable", started)
            raise
        except ProviderError:
            self._observe(operation, "permanent", started)
            raise
        self._observe(operation, "ok", started)
        return result

    def pause_left(self, operation: str, *more: str) -> float:
        """Seconds until each of these operations takes calls again (0: now).
        Consumers fetch nothing meanwhile: what they fetched would only wait here."""
        now = self._monotonic()
        return max(0.0, *(self._not_before.get(op, 0.0) - now for op in (operation, *more)))

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
