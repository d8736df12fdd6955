"""Batches from a durable pull consumer without a task per message.

nats-py's `fetch` waits for each message of a batch with its own timeout,
which costs two tasks and a uuid per message: at ten thousand events a second
that is a good part of a core. Here one pull request asks for the batch, a
subscription callback collects what JetStream sends, and the caller waits on
one future. The protocol is JetStream's own: a request to
`$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>` whose reply subject receives
the messages, then a status message (408) when the request expires with
fewer.

Messages that arrive after a fetch returned (the request was still open) are
kept, in order, for the next fetch; `release()` hands them back to JetStream.
With `keepalive_s` (seconds, asked anew each round: the consumer's ack wait
may change), kept messages get an in-progress ack (+WPI) that often: the
caller may be busy (say, waiting out a provider's Retry-After) for longer
than the consumer's ack wait, and JetStream would deliver them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

_STATUS = "Status"
EXPIRY_GRACE_S = 1.0
_HEARTBEAT = "100"
_NO_RESPONDERS = "503"


class ConsumerUnavailable(Exception):
    """Nothing answered the pull request: no such consumer, or JetStream is down."""


class PullConsumer:
    """Fetches batches for one consume loop; not shared between loops."""

    def __init__(
        self,
        nc: Client,
        *,
        stream: str,
        durable: str,
        keepalive_s: Callable[[], float] | None = None,
    ) -> None:
        self._nc = nc
        self._keepalive_s = keepalive_s
        self._keeper: asyncio.Task[None] | None = None
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = ""
        self._subscription: Subscription | None = None
        self._buffer: list[Msg] = []
        # Open pull requests, oldest first: [expiry (monotonic), messages still owed].
        self._requests: deque[list[float]] = deque()
        # (messages, bytes, future) a fetch waits for: see `_wait_for`.
        self._waiter: tuple[int, int, asyncio.Future[None]] | None = None
        self._unanswered = False
        # When the next batch was asked for ahead (`request_ahead`), if it was.
        self._ahead_since: float | None = None

    @property
    def connection(self) -> Client:
        return self._nc

    async def fetch(
        self,
        batch: int,
        *,
        wait_s: float,
        linger_s: float,
        max_bytes: int = 0,
        enough_bytes: int = 0,
    ) -> list[Msg]:
        """Up to `batch` messages: waits up to `wait_s` for the first, then at
        most `linger_s` for the batch to fill, unless what came holds
        `enough_bytes` already (0: no such bound). An empty list means none came.
        With `max_bytes`, a pull request asks for at most that many bytes (as
        the server counts a message: more than its payload), so it must exceed
        the server's max_payload: a message larger than it would never come;
        and a batch taken from what was kept holds about that many bytes at most
        (at least one message). No lingering once no request is open: nothing
        more can come."""
        started = time.monotonic()
        await self._request(batch, started, wait_s, max_bytes)
        await self._wait_for(1, wait_s)
        if self._unanswered:
            self._unanswered = False
            raise ConsumerUnavailable(self._api)
        if self._buffer and self._requests:  # an open request may bring more
            waited = time.monotonic() - started
            linger = min(self._linger_left(linger_s), wait_s - waited)
            await self._wait_for(batch, linger, enough_bytes)
        self._ahead_since = None
        return self.take_kept(batch, max_bytes)

    def take_kept(self, batch: int, max_bytes: int = 0) -> list[Msg]:
        """What came and was kept for the next fetch, at once: up to `batch`
        messages and about `max_bytes` (one at least); nothing when none came."""
        count = _within(self._buffer[:batch], max_bytes)
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken

    async def request_ahead(self, batch: int, *, expires_s: float, max_bytes: int = 0) -> bool:
        """Ask now for the next fetch's batch, without waiting: it comes while the
        caller handles the batch before (kept, and kept alive, as any message that
        comes between fetches), and the next fetch takes it at once, having
        lingered since. Kept messages then hold less than twice `max_bytes`. Whether
        a request was made (none when the kept messages and open requests cover it)."""
        now = time.monotonic()
        asked = await self._request(batch, now, expires_s, max_bytes)
        if asked or self._ahead_since is None:
            self._ahead_since = now
        return asked

    async def _request(self, batch: int, now: float, expires_s: float, max_bytes: int) -> bool:
        """A pull request for what `batch` still lacks (none when the buffer and the
        open requests cover it, or the buffer holds `max_bytes` already); whether
        one was made."""
        await self._subscribe_once()
        room = batch - len(self._buffer) - self._owed(now)
        if max_bytes and sum(map(_size, self._buffer)) >= max_bytes:
            room = 0
        if room > 0:
            request = {"batch": room, "expires": int(expires_s * 1e9)}
            if max_bytes:
                request["max_bytes"] = max_bytes
            self._requests.append([now + expires_s, room])
            await self._nc.publish(self._api, json.dumps(request).encode(), reply=self._inbox)
            return True
        return False

    def _linger_left(self, linger_s: float) -> float:
        """A batch asked for ahead has lingered since it was asked for."""
        if self._ahead_since is None:
            return linger_s
        return max(0.0, linger_s - (time.monotonic() - self._ahead_since))

    def _owed(self, now: float) -> int:
        """Messages the open requests may still bring. A request past its expiry
        by a second is taken as over, answered or not (across a reconnect the
        server forgets it without a word)."""
        while self._requests and self._requests[0][0] + EXPIRY_GRACE_S < now:
            self._requests.popleft()
        return int(sum(owed for _, owed in self._requests))

    async def release(self, delay_s: float | None = None) -> None:
        """Hand the messages kept for the next fetch back for redelivery now (or
        after `delay_s`)."""
        kept, self._buffer = self._buffer, []
        for msg in kept:
            with contextlib.suppress(Exception):
                await msg.nak(delay=delay_s)

    async def close(self) -> None:
        if self._keeper is not None:
            keeper, self._keeper = self._keeper, None
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await self.release()
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _subscribe_once(self) -> None:
        if self._subscription is None:
            self._inbox = self._nc.new_inbox()
            self._subscription = await self._nc.subscribe(self._inbox, cb=self._on_message)
        if self._keepalive_s is not None and self._keeper is None:
            self._keeper = asyncio.create_task(self._keep_alive(self._keepalive_s))

    async def _keep_alive(self, every_s: Callable[[], float]) -> None:
        while True:
            await asyncio.sleep(every_s())
            for msg in list(self._buffer):
                with contextlib.suppress(Exception):  # a lost connection: redelivered anyway
                    await msg.in_progress()

    async def _wait_for(self, count: int, timeout_s: float, enough_bytes: int = 0) -> None:
        """Until the buffer holds `count` messages, or `enough_bytes` (0: no such
        bound), or `timeout_s` passed."""
        if self._holds(count, enough_bytes) or timeout_s <= 0:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiter = (count, enough_bytes, future)
        timer = loop.call_later(timeout_s, _resolve, future)
        try:
            await future
        finally:
            timer.cancel()
            self._waiter = None

    def _holds(self, count: int, enough_bytes: int) -> bool:
        if len(self._buffer) >= count:
            return True
        return enough_bytes > 0 and sum(map(_size, self._buffer)) >= enough_bytes

    async def _on_message(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._buffer.append(msg)
            if self._requests:
                self._requests[0][1] -= 1
                if self._requests[0][1] <= 0:
                    self._requests.popleft()
            if self._waiter is not None and self._holds(*self._waiter[:2]):
                _resolve(self._waiter[2])
        elif status != _HEARTBEAT:
            self._unanswered = status == _NO_RESPONDERS
            # The oldest request ended (expired, or refused): the rest of it will not come.
            if self._requests:
                self._requests.popleft()
            if self._waiter is not None and not self._requests:
                _resolve(self._waiter[2])


def _size(msg: Msg) -> int:
    """About as many bytes as the server counts the message (its subjects and payload;
    headers aside)."""
    return len(msg.data) + len(msg.subject) + len(msg.reply)


def _within(messages: list[Msg], max_bytes: int) -> int:
    """How many of `messages`, from the first, fit `max_bytes` (0: no bound); one at least."""
    if not max_bytes:
        return len(messages)
    total = 0
    for count, msg in enumerate(messages):
        total += _size(msg)
        if total > max_bytes and count > 0:
            return count
    return len(messages)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
