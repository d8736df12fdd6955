"""The pull-consumer loop shared by the service's consumers and the dispatcher:
fetch a batch from a durable consumer, hand it over, repeat until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from marketing_runtime.clock import Sleep, pause
from marketing_runtime.connection import Bus
from marketing_runtime.pull import PullConsumer

log = logging.getLogger(__name__)
BatchHandler = Callable[[list[Msg]], Awaitable[None]]
# What came for the next batch while one is handled, taken at once (nothing: none came).
MoreMessages = Callable[[], Awaitable[list[Msg]]]
# A handler that may take what comes meanwhile as more of its batch (`consume(continuing=)`);
# `more()` lets go of the batch's settled messages (the list shrinks): the handler reads
# the batch through before it asks for more.
ContinuingHandler = Callable[[list[Msg], MoreMessages], Awaitable[None]]
# Seconds the handler's next call is still unavailable, given the batch so far.
FillWait = Callable[[list[Msg]], Awaitable[float]]
UNAVAILABLE_WAIT_S = 1.0
# How long a fetch waits for a first message, and a loop that may not fetch (its
# replica holds no lease) before it looks again.
FETCH_WAIT_S = 0.5
# The longest a batch keeps filling while its call is unavailable, and never
# longer than half the keep-alive interval: its messages are not kept alive
# meanwhile (the handler keeps them alive once it has them, its first +WPI a
# keep-alive interval later).
FILL_MAX_S = 5.0
# What came while a batch waited to fill is in the stream already: a short fetch takes it.
FILL_FETCH_S = 0.01


async def consume(
    bus: Bus,
    *,
    stream: str,
    durable: str,
    handle: BatchHandler | None = None,
    continuing: ContinuingHandler | None = None,
    stopping: asyncio.Event,
    batch: int = 1000,
    wait_s: float = FETCH_WAIT_S,
    linger_s: float = 0.0,
    may_fetch: Callable[[], bool] = lambda: True,
    hold_off: Callable[[], float] = lambda: 0.0,
    keepalive_s: Callable[[], float] | None = None,
    fill_wait: FillWait | None = None,
    payloads_per_fetch: int = 0,
    enough_bytes: int = 0,
    read_ahead: bool = False,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Fetch up to `batch` messages (waiting at most `wait_s` for the first,
    then up to `linger_s` more to fill the batch) and pass them to `handle`,
    which acks or naks each. While `may_fetch()` is false, fetch nothing and
    hand back what was kept for the next fetch. While `hold_off()` says to
    wait (seconds), fetch nothing either, and keep what is kept: it is sent
    when the wait is over. With `keepalive_s` (seconds, asked each round),
    messages kept for the next fetch are kept alive (+WPI) that often;
    `handle` keeps its own. With `fill_wait`, a batch that is not full keeps
    taking messages (up to FILL_MAX_S, and half of `keepalive_s`) while it says the
    handler's next call could not go yet: calls are spent on full batches when they are scarce.
    With `payloads_per_fetch`, a fetch takes at most that many times the
    server's max_payload in bytes (one message may carry a thousand pieces of
    work: this bounds what a batch holds). With `enough_bytes`, a batch holding
    that many bytes goes without its linger (a message of a thousand pieces is a
    call's worth already). With `read_ahead`, the next batch is
    asked for as a batch is handed over (unless held off), so that it comes (and
    its linger passes) while the handler works: a handler whose calls are the
    scarce resource has its next batch at hand the moment it is done. The
    request is open as long as a fetch's (`wait_s`): it outlives a lost lease no
    longer than a fetch did; and after a failed batch what came ahead goes back
    with it, so it cannot overtake it.
    A `continuing` handler (given in place of `handle`) is passed, with its
    batch, a `more()` that takes what came meanwhile (as the next fetch would,
    and asks ahead again, whether any came or not: it may be asked again for
    what comes): it may go on with those as more of its batch, so
    that the next batch is read while this one's calls are answered, not after.
    What it took is handed back with the batch should the batch fail; `more()`
    takes nothing once stopping, not to fetch, held off, or reconnected.
    Pauses wait by `sleep` and end early on `stopping`."""
    if (handle is None) == (continuing is None):
        raise TypeError("consume takes a handle or a continuing handler, one of them")
    puller: PullConsumer | None = None

    def run(
        puller: PullConsumer, messages: list[Msg], asked_at: float
    ) -> Callable[[], Awaitable[None]]:
        if continuing is None:
            assert handle is not None
            return lambda: handle(messages)

        async def more() -> list[Msg]:
            nonlocal asked_at
            if stopping.is_set() or not may_fetch() or hold_off() > 0:
                return []
            if puller.connection is not bus.nc:  # kept on a lost connection
                return []
            max_bytes = payloads_per_fetch * puller.connection.max_payload  # as a fetch's
            taken = puller.take_kept(batch, max_bytes)
            if taken:
                # Handed back with the batch, should it fail; what was settled
                # (acked or nak'ed) is let go, or a backlog handled as one batch
                # would keep every message. (The handler has read `messages`
                # through before it asks for more.)
                messages[:] = [msg for msg in messages if not msg.is_acked]
                messages.extend(taken)
            # When none came, a request is kept open for what comes: one is made
            # at most once a request's life (`wait_s`), so that one the server ends
            # at once (an error status) is not repeated at every call.
            due = read_ahead and (taken or time.monotonic() - asked_at >= wait_s)
            if due and await _ask_ahead(puller, batch, wait_s, max_bytes):
                asked_at = time.monotonic()
            return taken

        return lambda: continuing(messages, more)

    try:
        while not stopping.is_set():
            nc = bus.nc
            if nc is None or not may_fetch():
                if puller is not None:
                    await puller.release()
                await pause(stopping, UNAVAILABLE_WAIT_S if nc is None else wait_s, sleep)
                continue
            if (wait := hold_off()) > 0:
                await pause(stopping, wait, sleep)
                continue
            if puller is None or puller.connection is not nc:
                if puller is not None:
                    await puller.close()  # stops its keeper; its messages are on a lost connection
                puller = PullConsumer(nc, stream=stream, durable=durable, keepalive_s=keepalive_s)
            max_bytes = payloads_per_fetch * nc.max_payload
            try:
                messages = await puller.fetch(
                    batch,
                    wait_s=wait_s,
                    linger_s=linger_s,
                    max_bytes=max_bytes,
                    enough_bytes=enough_bytes,
                )
            except Exception as exc:
                log.warning("%s: fetch failed: %r", durable, exc)
                await pause(stopping, UNAVAILABLE_WAIT_S, sleep)
                continue
            if messages and fill_wait is not None:
                most_s = min(FILL_MAX_S, keepalive_s() / 2) if keepalive_s else FILL_MAX_S
                messages = await _filled(
                    puller, messages, batch, fill_wait, most_s, sleep, max_bytes
                )
            if messages:
                asked = (
                    read_ahead
                    and hold_off() <= 0
                    and await _ask_ahead(puller, batch, wait_s, max_bytes)
                )
                # (-inf: no request is open for what comes; `more()` makes one)
                asked_at = time.monotonic() if asked else -math.inf
                handled = await _handle(
                    durable, run(puller, messages, asked_at), messages, stopping, sleep
                )
                if not handled and read_ahead:  # what came ahead goes back with the batch
                    await puller.release(delay_s=UNAVAILABLE_WAIT_S)
    finally:
        if puller is not None:
            await puller.close()


async def _ask_ahead(puller: PullConsumer, batch: int, wait_s: float, max_bytes: int) -> bool:
    """Ask for the next batch ahead; whether a request went out (or failed to: it
    counts as asked, not to be tried again at once)."""
    try:
        return await puller.request_ahead(batch, expires_s=wait_s, max_bytes=max_bytes)
    except Exception as exc:  # the next fetch asks again
        log.warning("asking for the next batch ahead failed: %r", exc)
        return True


async def _filled(
    puller: PullConsumer,
    messages: list[Msg],
    batch: int,
    fill_wait: FillWait,
    most_s: float,
    sleep: Sleep,
    max_bytes: int = 0,
) -> list[Msg]:
    """`messages` and more: while the batch is not full and its call would wait,
    wait (by `sleep`) and take what came meanwhile, for `most_s` at most (real
    seconds: nothing keeps these messages alive meanwhile, and the server's ack
    wait runs on real time). A failed fetch ends the filling: what is in hand
    goes as it is."""
    started = time.monotonic()
    while len(messages) < batch and (wait := await fill_wait(messages)) > 0:
        left = most_s - (time.monotonic() - started)
        if left <= 0:
            break
        await sleep(min(wait, left))
        try:
            messages += await puller.fetch(
                batch - len(messages),
                wait_s=FILL_FETCH_S,
                linger_s=FILL_FETCH_S,
                max_bytes=max_bytes,
            )
        except Exception as exc:
            log.warning("fetch failed while filling a batch: %r", exc)
            break
    return messages


async def _handle(
    durable: str,
    run: Callable[[], Awaitable[None]],
    messages: list[Msg],
    stopping: asyncio.Event,
    sleep: Sleep,
) -> bool:
    """Whether the batch (`run` handles it) was handled (else it was handed
    back, after a pause)."""
    try:
        await run()
    except Exception:
        # The loop must outlive any one batch: hand it back for redelivery.
        log.exception("%s: handling a batch of %d failed", durable, len(messages))
        await _hand_back(messages)
        await pause(stopping, UNAVAILABLE_WAIT_S, sleep)
        return False
    return True


async def _hand_back(messages: list[Msg]) -> None:
    for msg in messages:
        with contextlib.suppress(Exception):
            await msg.nak(delay=UNAVAILABLE_WAIT_S)
