"""Pipelined JetStream publishing of a whole batch at once.

nats-py's `publish_async` spends more CPU per message than the rest of the
ingest path together (a task for its stall timeout, random reply tokens, header
validation, a write per message). Here a batch of messages becomes one buffer
of HPUB frames written in one go, and each acknowledgement resolves a future
found by its reply token: the same JetStream protocol, a fraction of the CPU.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from service.bus.envelope import MSG_ID_HEADER

log = logging.getLogger(__name__)
_HEADER_HEAD = f"NATS/1.0\r\n{MSG_ID_HEADER}: ".encode()
_CRLF = b"\r\n"
# How long the first of several concurrent publications waits for the others
# (see _write_outgoing); a few milliseconds on calls that wait tens under load.
GROUP_COMMIT_S = 0.002


@dataclass(frozen=True, slots=True)
class Ack:
    """JetStream stored the message (`duplicate`: it had it already, by id)."""

    duplicate: bool


class PublishError(Exception):
    """JetStream answered the publication with an error (the message is not stored)."""


class BatchPublisher:
    """Publishes batches on one connection and collects their acks.
    Message ids must be printable ASCII without spaces (they are header values)."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = ""
        self._subscription: Subscription | None = None
        self._tokens = itertools.count()
        self._waiting: dict[str, asyncio.Future[Ack]] = {}
        self._outgoing: list[bytes] = []
        self._writing = False

    async def publish(
        self, subject: str, messages: Sequence[tuple[str, bytes]], timeout_s: float
    ) -> list[Ack | None]:
        """Publish (message id, payload) pairs in order; one ack per message,
        or None where JetStream refused it or did not answer in `timeout_s`
        (the message may or may not be stored: publish it again, same id)."""
        if not messages:
            return []
        await self._subscribe_once()
        loop = asyncio.get_running_loop()
        tokens = [str(next(self._tokens)) for _ in messages]
        futures = [loop.create_future() for _ in messages]
        others_in_flight = bool(self._waiting)
        self._waiting.update(zip(tokens, futures, strict=True))
        try:
            await self._write(subject, messages, tokens, linger=others_in_flight)
            return await _results_within(futures, timeout_s)
        finally:
            for token in tokens:
                self._waiting.pop(token, None)

    async def _write(
        self,
        subject: str,
        messages: Sequence[tuple[str, bytes]],
        tokens: list[str],
        *,
        linger: bool,
    ) -> None:
        for (msg_id, payload), token in zip(messages, tokens, strict=True):
            header = b"".join((_HEADER_HEAD, msg_id.encode(), _CRLF, _CRLF))
            size = len(header)
            line = f"HPUB {subject} {self._prefix}{token} {size} {size + len(payload)}\r\n"
            self._outgoing += (line.encode(), header, payload, _CRLF)
        if not self._writing:
            await self._write_outgoing(GROUP_COMMIT_S if linger else 0.0)

    async def _write_outgoing(self, linger_s: float) -> None:
        """Group commit: under load (other publications awaiting their acks)
        the first caller waits `linger_s`, then writes the frames of every
        caller up to then: one write, one flush and one burst of acks for the
        unary RPCs that arrive together, not one each. That halves the CPU a
        TrackEvent costs at 128 in flight; a lone call is written at once.
        A failed write leaves the others' acks missing, and they fall back
        like any unacknowledged publication."""
        self._writing = True
        try:
            await asyncio.sleep(linger_s)  # let the other callers add their frames
            nc = self._nc
            while self._outgoing:
                data, self._outgoing = b"".join(self._outgoing), []
                # nats-py has no public call for pre-framed commands; these two are
                # what its own publish uses (pinned by tests/service/bus/test_publisher.py).
                await nc._send_command(data)
                await nc._flush_pending()
        finally:
            self._outgoing = []
            self._writing = False

    async def _subscribe_once(self) -> None:
        if self._subscription is None:
            self._prefix = self._nc.new_inbox() + "."
            self._subscription = await self._nc.subscribe(self._prefix + "*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if future is None or future.done():
            return  # answered after its batch gave up waiting
        data = msg.data
        if b'"error"' in data or not data:
            future.set_exception(PublishError(_error_text(msg)))
        else:
            # Plain acks carry no "duplicate" key: parse only the rare ones that do.
            future.set_result(Ack(duplicate=b'"duplicate"' in data and _is_duplicate(data)))

    async def close(self) -> None:
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            await subscription.unsubscribe()


def _is_duplicate(data: bytes) -> bool:
    try:
        return json.loads(data).get("duplicate") is True
    except ValueError:
        return False


def _error_text(msg: Msg) -> str:
    if msg.headers and msg.headers.get("Status") == "503":
        return "no stream listens on this subject"
    try:
        return str(json.loads(msg.data).get("error", {}).get("description", "unknown error"))
    except ValueError:
        return repr(msg.data[:200])


async def _results_within(futures: list[asyncio.Future[Ack]], timeout_s: float) -> list[Ack | None]:
    """Each future's ack, or None if it failed or did not come in time.
    (One timer for all, and no task per future.)"""
    timer = asyncio.get_running_loop().call_later(timeout_s, _cancel_pending, futures)
    try:
        results = await asyncio.gather(*futures, return_exceptions=True)
    finally:
        timer.cancel()
    for result in results:
        if isinstance(result, PublishError):
            log.warning("JetStream refused a publication: %s", result)
    return [r if isinstance(r, Ack) else None for r in results]


def _cancel_pending(futures: list[asyncio.Future[Ack]]) -> None:
    for future in futures:
        future.cancel()
