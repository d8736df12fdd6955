"""The HTTP connection pool of every provider client, and what the gate knows of it.

A request stamped by the shared budget must leave within half the budget's margin
of its stamp (`dispatcher.budget`). httpx makes a request wait, after it was
handed over, while all of its pool's connections are busy; so the gate keeps no
more stamped requests in flight than the pool has connections
(`ProviderGate(connections=...)`), and any wait for one comes before the stamp.
Whether a request leaves in time is checked, and measured, where it leaves:
`note_leaving`, a request hook of every provider client, asks the gate whether the
reservation is still fresh as the request's first bytes are about to be written (after
httpx's own steps and any connection opened), and notes the stamp's age then
(`marketing_dispatcher_budget_stamp_age_seconds`).
"""

from __future__ import annotations

from typing import Any

import httpx

from dispatcher import metrics
from dispatcher.providers.base import current_stamp, freshness_check

# httpx's own defaults, stated so that the gate and the pool agree on them.
CONNECTIONS = 100
KEPT_ALIVE = 20  # idle connections kept open
# httpcore's trace event as a request's first bytes are about to be written (its name
# begins with the protocol: "http11", or "http2").
_HEADERS_GOING = ".send_request_headers.started"


def limits() -> httpx.Limits:
    return httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=KEPT_ALIVE)


async def note_leaving(request: httpx.Request) -> None:
    """httpx's request hook. As the request's first bytes are about to go (httpcore's
    `trace` extension, after any wait for a connection or its opening), the gate's
    reservation of it is checked (`still_fresh`: taken again if it aged, waiting for
    room if need be), then the stamp's age is noted. The gate's hooks are read here, in
    the request's task, where it set them; a trace the caller set still gets every
    event."""
    check, stamp = freshness_check(), current_stamp()
    if check is None and stamp is None:
        return
    ages = None if stamp is None else metrics.BUDGET_STAMP_AGE.labels(stamp[0])
    earlier = request.extensions.get("trace")

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event.endswith(_HEADERS_GOING):
            if check is not None:
                await check()
            if ages is not None and stamp is not None:
                # A stamp ahead of our clock (another replica's, a little ahead) counts as 0.
                ages.observe(max(0.0, stamp[1]()))
        if earlier is not None:
            await earlier(event, info)

    request.extensions["trace"] = trace
