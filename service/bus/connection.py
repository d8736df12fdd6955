"""A NATS connection that keeps trying in the background, so the service can
start and serve (falling back to the outbox) while NATS is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from service.bus import topology
from service.bus.publisher import DEFAULT_GROUP_COMMIT_S, BatchPublisher

log = logging.getLogger(__name__)
RECONNECT_WAIT_S = 1.0


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
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._publisher: BatchPublisher | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def js(self) -> JetStreamContext | None:
        """JetStream while connected and declared; None means "use the fallback"."""
        if self._js is not None and self._nc is not None and self._nc.is_connected:
            return self._js
        return None

    @property
    def nc(self) -> Client | None:
        """The connection while connected and declared, like `js`."""
        return self._nc if self.js is not None else None

    @property
    def publisher(self) -> BatchPublisher | None:
        """The batch publisher while connected and declared, like `js`."""
        return self._publisher if self.js is not None else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name="nats-connect")

    async def wait_ready(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        return self._ready.is_set()

    async def _connect_forever(self) -> None:
        while self._js is None:
            nc: Client | None = None
            try:
                nc = await nats.connect(
                    self._url,
                    name=self._name,
                    max_reconnect_attempts=-1,  # once connected, never give up
                    reconnect_time_wait=RECONNECT_WAIT_S,
                    connect_timeout=2,
                )
                js = nc.jetstream()
                await topology.declare(js, replicas=self._replicas)
                self._nc, self._js = nc, js
                self._publisher = BatchPublisher(nc, group_commit_s=self._group_commit_s)
                self._ready.set()
                log.info("connected to NATS at %s", self._url)
            except Exception as exc:  # unreachable, or JetStream not ready yet
                log.warning("NATS not available (%r); retrying", exc)
                if nc is not None:
                    with contextlib.suppress(Exception):
                        await nc.close()
                await asyncio.sleep(RECONNECT_WAIT_S)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._nc is not None:
            # Everything we published was acknowledged already; pull
            # subscriptions need no draining (unacked work is redelivered).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._nc.flush(), 2.0)
            with contextlib.suppress(Exception):
                await self._nc.close()
