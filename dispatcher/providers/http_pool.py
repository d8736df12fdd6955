"""The HTTP connection pool of every provider client, and how a stamped request
leaves it in time.

A request stamped by the shared budget must leave within half the budget's margin
of its stamp (`dispatcher.budget`). httpx makes a request wait, after it was
handed over, while all of its pool's connections are busy; so the gate keeps no
more stamped requests in flight than the pool has connections
(`ProviderGate(connections=...)`), and any wait for one comes before the stamp.
httpx's own awaits on a busy event loop can still make a request late (about 1 in
11 was more than 50 ms late in a full sync, README figure 7), and so can the setup of
the connection it opens (TCP, and TLS to a provider far away: a round trip or two).
So every provider client's request hook, `note_leaving`, looks at the stamp once more
where the request leaves, as its first bytes are about to be written. A stale stamp is
exchanged there for one of now if the budget has room at once
(`RequestStamp.restamp`; never waited for, as the request holds its connection), and
the request goes on it; else the request is called off before any byte goes
(`LeftLate`; httpcore then closes that connection), and `sent_in_time` sends it again
on a stamp taken outside httpx, where waiting for room holds no connection. Between the
last look and the write nothing yields to the event loop: anyio hands the bytes to the
transport at once, unless the socket's send buffer is full, which it is not as a
request begins on a connection. So no request leaves later than the budget's proof
allows. (All of this is HTTP/1.1's, which the provider clients speak: over HTTP/2 the
headers could wait for another stream's, and a call-off would close only the stream.)
Through an HTTP proxy, the tunnel's CONNECT goes first on the request's own trace: it
is passed over, and the request looked at as its own headers go. Late requests are
counted by what became of them
(`marketing_dispatcher_budget_late_requests_total`: restamped, called_off), and the
stamp's age as a request does go is measured
(`marketing_dispatcher_budget_stamp_age_seconds`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from dispatcher import metrics
from dispatcher.providers.base import Leaving, current_stamp, still_fresh
from dispatcher.providers.errors import RetryableProviderError

T = TypeVar("T")
# httpx's own defaults, stated so that the gate and the pool agree on them.
CONNECTIONS = 100
KEPT_ALIVE = 20  # idle connections kept open
# httpcore's trace event as a request's first bytes are about to be written (its name
# begins with the protocol: "http11" for the HTTP/1.1 the clients speak).
_HEADERS_GOING = ".send_request_headers.started"
# How many times a request is sent on a new stamp after it came to leave on a stale
# one, before it fails as retryable (nothing of that request went).
LATE_SENDS = 5


class LeftLate(Exception):
    """A stamped request came to leave after its stamp went stale: called off before
    any of its bytes were written."""


def limits() -> httpx.Limits:
    return httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=KEPT_ALIVE)


async def note_leaving(request: httpx.Request) -> None:
    """httpx's request hook: a request the gate stamped is looked at as its first bytes
    are about to go (httpcore's `trace` extension, after any wait for a connection or
    its opening): on a stale stamp it goes on one taken there at once, or is called off
    (`LeftLate`) when the budget has no room now; the age of the stamp it goes on is
    noted. How far the request got goes to the stamp (`Leaving`): handed over here, not
    sent once its trace reports anything, gone as its headers go. The stamp is read
    here, in the request's task, where the gate set it; a trace the caller set still
    gets every event, before the look."""
    stamp = current_stamp()
    if stamp is None:
        return
    stamp.left(Leaving.HANDED_OVER)
    ages = metrics.BUDGET_STAMP_AGE.labels(stamp.operation)
    earlier = request.extensions.get("trace")
    traced = gone = False

    async def trace(event: str, info: dict[str, Any]) -> None:
        nonlocal traced, gone
        if earlier is not None:
            await earlier(event, info)
        if not traced:  # the first event comes before any byte of the request
            traced = True
            stamp.left(Leaving.NOT_SENT)
        if gone or not _own_exchange(info):
            return
        if event.endswith(_HEADERS_GOING) and not stamp.fresh():
            # Its round trips are awaited: the stamp is looked at again after them.
            restamped = await stamp.restamp() and stamp.fresh()
            outcome = "restamped" if restamped else "called_off"
            metrics.BUDGET_LATE_REQUESTS.labels(stamp.operation, outcome).inc()
            if not restamped:
                raise LeftLate(stamp.operation)
        # Its headers go now; or, were httpcore to name their event otherwise, a later
        # step of its exchange (its body, the answer) tells that they went.
        gone = True
        stamp.left(Leaving.GONE)
        # A stamp ahead of our clock (another replica's, a little ahead) counts as 0.
        ages.observe(max(0.0, stamp.age()))

    request.extensions["trace"] = trace


def _own_exchange(info: dict[str, Any]) -> bool:
    """Whether a trace event is of the request's own HTTP exchange, not of its
    connection's setup, nor of an HTTP proxy's CONNECT, which httpcore sends on the
    request's own trace before the request itself: the provider sees nothing of it,
    and the request is looked at when its own headers go through the tunnel."""
    request = info.get("request")
    return request is not None and request.method != b"CONNECT"


async def sent_in_time(send: Callable[[], Awaitable[T]]) -> T:
    """`send()` (one request of a provider client whose hook is `note_leaving`) on a
    fresh stamp: taken again first if it aged, and again each time the request came
    to leave late. Nothing was written of a request called off, so sending it again
    repeats nothing. Unstamped requests go as they are."""
    for _ in range(LATE_SENDS):
        await still_fresh()
        try:
            return await send()
        except LeftLate:
            continue
    stamp = current_stamp()
    operation = stamp.operation if stamp is not None else "request"
    raise RetryableProviderError(
        f"{operation}: the request came to leave after its budget stamp went stale "
        f"{LATE_SENDS} times; none of it was sent"
    )
