"""Klaviyo's rate limits, as the sandbox enforces them.

Stated here on their own, from Klaviyo's OpenAPI document (revision 2026-07-15, each operation's
`x-klaviyo-ratelimit`; shared/PROVIDERS.md and PROVIDERS-API.md): the client's table in
dispatcher/providers/klaviyo/limits.py is deliberately not imported, so a wrong client table
shows up as 429s in tests instead of agreeing with itself.

Klaviyo counts per account (per API key here) and per endpoint (method and path template) in
fixed windows aligned to epoch time: a call at `t` falls in window `floor(t / seconds)` of each
of the endpoint's windows (1 second burst, 1 minute steady, a day where one is stated). A call
past any window's limit is refused with 429 and is not counted anywhere.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

SECOND, MINUTE, DAY = 1, 60, 86_400


@dataclass(frozen=True)
class Window:
    calls: int
    seconds: int


def _windows(per_second: int, per_minute: int, per_day: int | None = None) -> tuple[Window, ...]:
    windows = (Window(per_second, SECOND), Window(per_minute, MINUTE))
    return windows if per_day is None else (*windows, Window(per_day, DAY))


# "METHOD /path/template" -> windows, for every endpoint the sandbox serves. None of these has a
# daily limit in the spec (the reporting endpoints that do are not served).
RATE_LIMITS: Mapping[str, tuple[Window, ...]] = MappingProxyType(
    {
        "POST /api/profile-import": _windows(75, 750),
        "POST /api/events": _windows(350, 3500),
        "POST /api/event-bulk-create-jobs": _windows(10, 150),
        "POST /api/profile-subscription-bulk-create-jobs": _windows(75, 750),
        "POST /api/profile-subscription-bulk-delete-jobs": _windows(75, 750),
        "POST /api/profile-suppression-bulk-create-jobs": _windows(75, 750),
        "POST /api/profile-suppression-bulk-delete-jobs": _windows(75, 750),
        "POST /api/data-privacy-deletion-jobs": _windows(3, 60),
        "POST /api/profile-bulk-import-jobs": _windows(10, 150),
        "GET /api/profile-bulk-import-jobs/{id}": _windows(10, 150),
        "GET /api/profile-bulk-import-jobs/{id}/import-errors": _windows(10, 150),
        "GET /api/profiles": _windows(75, 750),
        "GET /api/profiles/{id}/lists": _windows(3, 60),
    }
)


@dataclass(frozen=True)
class Admitted:
    """The steady (1-minute) window after counting the call: what Klaviyo's RateLimit-*
    headers describe on every answer that is not a 429."""

    limit: int
    remaining: int
    reset_s: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }


@dataclass(frozen=True)
class Refused:
    retry_after: int  # whole seconds until every exceeded window has ended, at least 1


def _seconds_left(now: float, seconds: int) -> int:
    end = (math.floor(now / seconds) + 1) * seconds
    return max(1, math.ceil(end - now))


class RateLimiter:
    """Counts calls per (account, endpoint, window) and refuses those past a limit.

    With `enforce=False` nothing is refused but everything is still counted, so the peaks show
    what a client would have needed (for measuring ceilings)."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        enforce: bool = True,
        table: Mapping[str, tuple[Window, ...]] = RATE_LIMITS,
    ) -> None:
        self._clock = clock
        self._enforce = enforce
        self._table = table
        self._lock = threading.Lock()
        # (account, endpoint, seconds) -> (window index, calls counted in it)
        self._counts: dict[tuple[str, str, int], tuple[int, int]] = {}
        self._peaks: dict[tuple[str, int], int] = {}  # (endpoint, seconds) -> most in one window
        self._refused: dict[str, int] = {}

    @property
    def enforced(self) -> bool:
        return self._enforce

    def admit(self, account: str, endpoint: str) -> Admitted | Refused | None:
        """Count one call, or refuse it; None for an endpoint without limits."""
        windows = self._table.get(endpoint)
        if not windows:
            return None
        now = self._clock()
        with self._lock:
            current = [self._current(account, endpoint, w, now) for w in windows]
            exceeded = [w for w, n in zip(windows, current, strict=True) if n >= w.calls]
            if exceeded and self._enforce:
                self._refused[endpoint] = self._refused.get(endpoint, 0) + 1
                return Refused(max(_seconds_left(now, w.seconds) for w in exceeded))
            for window, count in zip(windows, current, strict=True):
                self._count(account, endpoint, window, now, count + 1)
        steady = next((w for w in windows if w.seconds == MINUTE), windows[-1])
        steady_count = current[windows.index(steady)] + 1
        return Admitted(
            steady.calls, max(0, steady.calls - steady_count), _seconds_left(now, steady.seconds)
        )

    def _current(self, account: str, endpoint: str, window: Window, now: float) -> int:
        index, count = self._counts.get((account, endpoint, window.seconds), (-1, 0))
        return count if index == math.floor(now / window.seconds) else 0

    def _count(self, account: str, endpoint: str, window: Window, now: float, count: int) -> None:
        index = math.floor(now / window.seconds)
        self._counts[(account, endpoint, window.seconds)] = (index, count)
        peak_key = (endpoint, window.seconds)
        self._peaks[peak_key] = max(self._peaks.get(peak_key, 0), count)

    def report(self) -> dict[str, Any]:
        """Per endpoint: 429s answered, and per window its limit and the most calls one
        account had accepted in one window of it."""
        with self._lock:
            return {
                endpoint: {
                    "throttled": self._refused.get(endpoint, 0),
                    "windows": {
                        str(w.seconds): {
                            "limit": w.calls,
                            "peak": self._peaks.get((endpoint, w.seconds), 0),
                        }
                        for w in windows
                    },
                }
                for endpoint, windows in self._table.items()
            }

    def forget_observations(self) -> None:
        """Reset the report (not the live windows: those are the account's state)."""
        with self._lock:
            self._peaks.clear()
            self._refused.clear()
