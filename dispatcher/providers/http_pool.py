"""The HTTP connection pool of every provider client, and what the gate knows of it.

A request stamped by the shared budget must leave within half the budget's margin
of its stamp (`dispatcher.budget`). httpx makes a request wait, after it was
handed over, while all of its pool's connections are busy; so the gate keeps no
more stamped requests in flight than the pool has connections
(`ProviderGate(connections=...)`), and any wait for one comes before the stamp.
"""

from __future__ import annotations

import httpx

# httpx's own defaults, stated so that the gate and the pool agree on them.
CONNECTIONS = 100
KEPT_ALIVE = 20  # idle connections kept open


def limits() -> httpx.Limits:
    return httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=KEPT_ALIVE)
