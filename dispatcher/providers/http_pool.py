"""The HTTP connection pool of every provider client, and what the gate knows of it.

A request stamped by the shared budget must leave within half the budget's margin
of its stamp (`dispatcher.budget`). httpx makes a request wait, after it was
handed over, while all of its pool's connections are busy; so the gate keeps no
more stamped requests in flight than the pool has connections
(`ProviderGate(connections=...)`), and any wait for one comes before the stamp.
Whether requests do leave in time is measured where they leave: `note_leaving`, a
request hook of every provider client, notes the stamp's age when the request's
first bytes are written (`marketing_dispatcher_budget_stamp_age_seconds`).
"""

from __future__ import annotations

from typing import Any

import httpx

from dispatcher import metrics
from dispatcher.providers.base import current_stamp

# httpx's own defaults, stated so that the gate and the pool agree on them.
CONNECTIONS = 100
KEPT_ALIVE = 20  # idle connections kept open
# httpcore's trace event as a request's first bytes are about to be written (its name
# begins with the protocol: "http11", or "http2").
_HEADERS_GOING = ".send_request_headers.started"


def limits() -> httpx.Limits:
    return httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=KEPT_ALIVE)


async def note_leaving(request: httpx.Request) -> None:
    """httpx's request hook: a request the gate stamped notes how old its stamp is as
    its first bytes go (httpcore's `trace` extension, after any wait for a connection or
    its opening). The stamp is read here, in the request's task, where the gate set it; a
    trace the caller set still gets every event."""
    stamp = current_stamp()
    if stamp is None:
        return
    operation, age = stamp
    ages = metrics.BUDGET_STAMP_AGE.labels(operation)
    earlier = request.extensions.get("trace")

    noted = False

    async def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal noted
        if event.endswith(_HEADERS_GOING) and not noted:
            # Once: httpcore may try a request again on another connection.
            noted = True
            # A stamp ahead of our clock (another replica's, a little ahead) counts as 0.
            ages.observe(max(0.0, age()))
        if earlier is not None:
            await earlier(event, info)

    request.extensions["trace"] = trace
