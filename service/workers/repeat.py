"""The loop every PostgreSQL-only background worker runs: a step, then a
pause the step's outcome decides; a failed step waits a doubling back-off
instead, so an unreachable database is not hammered (nor the log filled),
and a bug in one step never ends the loop for good."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from marketing_runtime import clock

from service.errors import MarketingError

log = logging.getLogger(__name__)

_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 30.0
_MAX_DOUBLINGS = 16


def backoff_s(failures: int) -> float:
    """The wait after `failures` failed steps in a row: doubling from half a
    second up to 30 s."""
    if failures == 0:
        return 0.0
    doublings = min(failures - 1, _MAX_DOUBLINGS)  # no float overflow after days of failures
    return float(min(_MAX_BACKOFF_S, _FIRST_BACKOFF_S * 2**doublings))


class Wakeup:
    """Ends the pauses of loops that wait on it (`repeat(..., wake=)`): each firing
    is a new generation, so a loop that looked before a firing and pauses after it
    does not pause at all (no firing is missed between a step and its pause)."""

    def __init__(self) -> None:
        self.generation = 0
        self._fired = asyncio.Event()  # set when this generation ends

    def fire(self) -> None:
        self.generation += 1
        self._fired.set()
        self._fired = asyncio.Event()

    async def after(self, generation: int, stopping: asyncio.Event, timeout_s: float) -> None:
        """Return once fired after `generation`, `stopping` is set, or `timeout_s` passed."""
        if self.generation == generation:
            await clock.pause_until((self._fired, stopping), timeout_s)


async def repeat(
    what: str,
    step: Callable[[], Awaitable[int]],
    pause: Callable[[int], Awaitable[float]],
    stopping: asyncio.Event,
    *,
    wake: Wakeup | None = None,
) -> None:
    """Run `step` until `stopping` is set, waiting `pause(what step returned)`
    seconds between steps (or the back-off after a failure); with `wake`, a
    pause (not a back-off) ends when it fires."""
    failures = 0
    while not stopping.is_set():
        generation = wake.generation if wake is not None else 0
        try:
            done = await step()
            failures = 0
            wait_s = await pause(done)
        except MarketingError as exc:  # PostgreSQL unreachable: the next time
            failures += 1
            log.warning("%s: %s", what, exc)
            wait_s = backoff_s(failures)
        except Exception:  # a bug must not end the loop for good
            failures += 1
            log.exception("%s failed", what)
            wait_s = backoff_s(failures)
        if wait_s <= 0:
            continue
        if wake is not None and failures == 0:
            await wake.after(generation, stopping, wait_s)
        else:
            await clock.pause(stopping, wait_s)
