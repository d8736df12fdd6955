"""Running one bulk provider call to its end: through the gate, retried in place
with backoff while the provider says to try again, and narrowed down to the
items it refused for good (`narrowing`). What cannot be sent is handed back
with the reason: to `refused` (the provider refused these items) or `gave_up`
(the attempts ran out, or the provider refused the call whatever it carried:
bad credentials, a missing resource); the caller decides what that means.

Only a refusal that may be about the items is narrowed: one naming items, or a
400, 413 or 422, or one raised before sending (no status). Halving a call the
account cannot make would spend about two calls per item for nothing."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from marketing_runtime.clock import Sleep

from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.narrowing import narrow
from dispatcher.delivery.retry import exhausted, retry_delay
from dispatcher.providers.base import BulkCall, OperationLimits
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError

T = TypeVar("T")


@dataclass(frozen=True)
class CallRunner(Generic[T]):
    """`guard` runs before each request and may raise to call the work off (a
    lost connection or lease): that propagates. `fail(owners, reason)` gets the
    owners whose items were refused; `gave_up(owners, reason)` those of a call
    given up on as a whole; `attempted(owners, attempt)` is told of every attempt.
    `bulk`: the calls are bulk work whatever their operation (`ProviderGate.call`)."""

    gate: ProviderGate
    guard: Callable[[], None]
    refused: Callable[[Sequence[T], str], None]
    gave_up: Callable[[Sequence[T], str], None]
    max_attempts: int
    backoff_base_s: float
    sleep: Sleep
    attempted: Callable[[Sequence[T], int], None] = lambda owners, attempt: None
    bulk: bool = False

    async def run(self, call: BulkCall[T], *, first_attempt: int = 1) -> None:
        for attempt in itertools.count(first_attempt):
            self.attempted(call.owners, attempt)
            try:
                await self.gate.call(
                    call.operation,
                    len(call.owners),
                    lambda: call.send(call.owners),
                    guard=self.guard,
                    bulk=self.bulk,
                )
                return
            except RetryableProviderError as exc:
                if exhausted(attempt, max_attempts=self.max_attempts):
                    return self.gave_up(call.owners, str(exc))
                delay = retry_delay(
                    attempt, retry_after=exc.retry_after, base_s=self.backoff_base_s
                )
                await self.sleep(delay)
            except PermanentProviderError as exc:
                if not _about_the_items(exc):
                    return self.gave_up(call.owners, str(exc))
                return await self._narrow(call, exc, attempt)

    async def _narrow(self, call: BulkCall[T], exc: PermanentProviderError, attempt: int) -> None:
        """Fail what the provider refused and send the rest again. The rest of a
        refusal that named items is the same call going on: its attempts count on
        from the refused one, within the same budget. The halves of a refusal that
        named none are calls of their own, each with a budget of its own."""
        narrowed = narrow(call.owners, exc.item_indexes)
        if narrowed.failed:
            self.refused(narrowed.failed, str(exc))
        first_attempt = attempt + 1 if narrowed.failed else 1
        for group in narrowed.retry:
            await self.run(BulkCall(call.operation, group, call.send), first_attempt=first_attempt)


def _about_the_items(exc: PermanentProviderError) -> bool:
    return bool(exc.item_indexes) or exc.status in (None, 400, 413, 422)


def split_by_limits(
    calls: Sequence[BulkCall[T]], limits: Mapping[str, OperationLimits]
) -> list[BulkCall[T]]:
    """Each call in parts of at most its operation's `max_items`, keeping the order
    (a planned call may hold any number of items: `Provider.plan_consent`)."""
    parts: list[BulkCall[T]] = []
    for call in calls:
        size = limits[call.operation].max_items
        for start in range(0, len(call.owners), size):
            parts.append(BulkCall(call.operation, call.owners[start : start + size], call.send))
    return parts
