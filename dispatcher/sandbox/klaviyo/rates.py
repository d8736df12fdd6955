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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from dispatcher.sandbox.common.windows import RateWindow, Refusal, WindowCounter, seconds_left

SECOND, MINUTE, DAY = 1, 60, 86_400


def _windows(
    endpoint: str, per_second: int, per_minute: int, per_day: int | None = None
) -> tuple[RateWindow, ...]:
    """An endpoint's windows, each counted in the bucket named after the endpoint."""
    windows = (RateWindow(endpoint, per_second, SECOND), RateWindow(endpoint, per_minute, MINUTE))
    return windows if per_day is None else (*windows, RateWindow(endpoint, per_day, DAY))


# Per second, per minute and (create_list, the reports) per day, for every endpoint ("METHOD
# /path/template") the sandbox serves.
_PER_ENDPOINT = {
    "POST /api/profile-import": (75, 750),
    "POST /api/events": (350, 3500),
    "POST /api/event-bulk-create-jobs": (10, 150),
    "POST /api/profile-subscription-bulk-create-jobs": (75, 750),
    "POST /api/profile-subscription-bulk-delete-jobs": (75, 750),
    "POST /api/profile-suppression-bulk-create-jobs": (75, 750),
    "POST /api/profile-suppression-bulk-delete-jobs": (75, 750),
    "POST /api/data-privacy-deletion-jobs": (3, 60),
    "POST /api/profile-bulk-import-jobs": (10, 150),
    "GET /api/profile-bulk-import-jobs/{id}": (10, 150),
    "GET /api/profile-bulk-import-jobs/{id}/import-errors": (10, 150),
    "GET /api/profiles": (75, 750),
    "GET /api/profiles/{id}/lists": (3, 60),
    "GET /api/lists": (75, 750),
    "POST /api/lists": (10, 150, 150),
    "POST /api/lists/{id}/relationships/profiles": (10, 150),
    "DELETE /api/lists/{id}/relationships/profiles": (10, 150),
    "GET /api/lists/{id}/profiles": (75, 750),
    "GET /api/webhooks": (1, 15),
    "POST /api/webhooks": (1, 15),
    "GET /api/webhooks/{id}": (1, 15),
    "DELETE /api/webhooks/{id}": (1, 15),
    "GET /api/webhook-topics": (1, 15),
    "GET /api/campaigns": (10, 150),
    "POST /api/campaigns": (10, 150),
    "GET /api/campaigns/{id}": (10, 150),
    "POST /api/campaign-message-assign-template": (10, 150),
    "POST /api/campaign-send-jobs": (10, 150),
    "GET /api/campaign-send-jobs/{id}": (10, 150),
    "POST /api/templates": (75, 750),
    "DELETE /api/templates/{id}": (75, 750),
    "GET /api/flows": (3, 60),
    "GET /api/metrics": (10, 150),
    "POST /api/campaign-values-reports": (1, 2, 225),
    "POST /api/flow-values-reports": (1, 2, 225),
    "POST /api/push-tokens": (75, 750),
    "GET /api/push-tokens/{id}": (10, 150),
    "DELETE /api/push-tokens/{id}": (3, 60),
}
RATE_LIMITS: Mapping[str, tuple[RateWindow, ...]] = MappingProxyType(
    {endpoint: _windows(endpoint, *limits) for endpoint, limits in _PER_ENDPOINT.items()}
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


class RateLimiter:
    """Klaviyo's windows per (account, endpoint) on the shared epoch-window counter.

    With `enforce=False` nothing is refused but everything is still counted, so the peaks show
    what a client would have needed (for measuring ceilings)."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        enforce: bool = True,
        table: Mapping[str, tuple[RateWindow, ...]] = RATE_LIMITS,
    ) -> None:
        self._enforce = enforce
        self._table = table
        self.windows = WindowCounter(clock, [w for ws in table.values() for w in ws])

    @property
    def enforced(self) -> bool:
        return self._enforce

    def admit(
        self, account: str, endpoint: str, at: float | None = None
    ) -> Admitted | Refusal | None:
        """Count one call that arrived `at` (by default now), or refuse it; None for an
        endpoint without limits."""
        windows = self._table.get(endpoint)
        if not windows:
            return None
        drawn = self.windows.draw(windows, account=account, enforce=self._enforce, at=at)
        if isinstance(drawn, Refusal):
            return drawn
        steady = next((w for w in windows if w.seconds == MINUTE), windows[-1])
        counted = drawn.counts[windows.index(steady)]
        ends = seconds_left(drawn.at, steady.seconds)  # from the instant the call counted at
        return Admitted(steady.limit, max(0, steady.limit - counted), ends)
