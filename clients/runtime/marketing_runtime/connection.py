"""A NATS connection that keeps trying in the background, so the service can
start and serve (falling back to the outbox) while NATS is unreachable, and
that is opened anew whenever the client closes for good.

nats-py reconnects by itself after a broken connection, but a protocol error
from the server (say `maximum payload exceeded`) closes the client for good,
whatever max_reconnect_attempts says. Everything that uses the bus therefore
asks it for the connection (`nc`, `js`, `publisher`) each time, never keeps
one: after a close those are the new connection's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.js import JetStreamContext

from marketing_runtime import topology
from marketing_runtime.connection_log import ConnectionLog
from marketing_runtime.envelope import NATS_MAX_PAYLOAD
from marketing_runtime.publisher import DEFAULT_GROUP_COMMIT_S, BatchPublisher

log = logging.getLogger(__name__)
RECONNECT_WAIT_S = 1  # seconds (nats-py takes an int)
# How often the bus looks whether its client closed without telling (nats-py
# calls closed_cb on most paths, not all): a safety net, not the usual way.
CLOSED_CHECK_S = 1.0


@dataclass
class _Session:
    """One nats-py client, from connected and declared until closed for good."""

    nc: Client
    js: JetStreamContext
    publisher: BatchPublisher
    closed: asyncio.Event  # set by nats-py's closed callback
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # set once the Bus noticed


class Bus:
    def __init__(
        self,
        url: str,
        *,
        replicas: int = 1,
        name: str = "marketing",
        group_commit_s: float = DEFAULT_GROUP_COMMIT_S,
    ) -> None:
        self._url = url
        self._group_commit_s = group_commit_s
        self._replicas = replicas
        self._name = name
        self._session: _Session | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._warned_max_payload = 0
        self.log = ConnectionLog(url, RECONNECT_WAIT_S)

    @property
    def js(self) -> JetStreamContext | None:
        """JetStream while connected and declared; None means "use the fallback"."""
        session = self._session
        if session is not None and session.nc.is_connected:
            return session.js
        return None

    @property
    def nc(self) -> Client | None:
        """The connection while connected and declared, like `js`."""
        return self._session.nc if self.js is not None and self._session else None

    @property
    def publisher(self) -> BatchPublisher | None:
        """The batch publisher while connected and declared, like `js`."""
        return self._session.publisher if self.js is not None and self._session else None

    @property
    def max_payload(self) -> int:
        """The largest message (headers and payload, see envelope.wire_size)
        the connected server takes; 0 while not connected."""
        nc = self.nc
        return nc.max_payload if nc is not None else 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="nats-connection")

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until connected and declared (True), for at most `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self._ready.is_set()

    def connection_ended(self) -> asyncio.Event:
        """Set once the current connection has closed for good (the Bus opens
        a new one): what was made on it (subscriptions, KV handles) is gone
        with it. Already set while there is no connection."""
        session = self._session
        if session is not None:
            return session.ended
        ended = asyncio.Event()
        ended.set()
        return ended

    async def _run(self) -> None:
        while True:
            session = await self._open()
            self._session = session
            self._ready.set()
            await _until_closed(session)
            self._ready.clear()
            self._session = None
            session.publisher.abandon()
            session.ended.set()
            self.log.closed(session.nc.last_error)

    async def _open(self) -> _Session:
        """Connect and declare the topology, retrying until it works."""
        while True:
            nc, closed = Client(), asyncio.Event()
            try:
                await self._connect(nc, closed)
                js = nc.jetstream()
                await topology.declare(js, replicas=self._replicas)
            except Exception as exc:  # unreachable, or JetStream not ready yet
                self.log.attempt_failed(exc)
                with contextlib.suppress(Exception):
                    await nc.close()
                await asyncio.sleep(RECONNECT_WAIT_S)
                continue
            self.log.connected()
            self._check_max_payload(nc)
            publisher = BatchPublisher(nc, group_commit_s=self._group_commit_s)
            return _Session(nc, js, publisher, closed)

    async def _connect(self, nc: Client, closed: asyncio.Event) -> None:
        async def disconnected() -> None:
            if not nc.is_closed:  # on the way to closed, that is logged instead
                self.log.disconnected()

        async def reconnected() -> None:
            self.log.connected(again=True)
            self._check_max_payload(nc)

        async def on_closed() -> None:
            closed.set()

        await nc.connect(
            self._url,
            name=self._name,
            max_reconnect_attempts=-1,  # once connected, never give up
            reconnect_time_wait=RECONNECT_WAIT_S,
            connect_timeout=2,
            error_cb=self.log.on_error,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            closed_cb=on_closed,
        )

    def _check_max_payload(self, nc: Client) -> None:
        limit = nc.max_payload
        if limit < NATS_MAX_PAYLOAD and limit != self._warned_max_payload:
            self._warned_max_payload = limit
            log.warning(
                "NATS at %s takes messages of at most %d bytes (max_payload); the largest "
                "event needs %d: larger messages are not published but kept in PostgreSQL "
                "as failed deliveries until max_payload is raised (see README, NATS)",
                self._url,
                limit,
                NATS_MAX_PAYLOAD,
            )

    async def close(self) -> None:
        if self._task is not None:
            # Cancelled again until it ends: a cancel can be swallowed on the
            # way (nats-py's connect, or wait_for on Python 3.11 when its inner
            # wait finishes at the same moment), which left close() hanging.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait({self._task}, timeout=1.0)
        session, self._session = self._session, None
        if session is not None:
            # Everything we published was acknowledged already; pull
            # subscriptions need no draining (unacked work is redelivered).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.nc.flush(), 2.0)
            with contextlib.suppress(Exception):
                await session.nc.close()


async def _until_closed(session: _Session) -> None:
    while not session.nc.is_closed:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSED_CHECK_S):  # unlike wait_for, never eats a cancel
                await session.closed.wait()
