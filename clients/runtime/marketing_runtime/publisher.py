"""Pipelined JetStream publishing of a whole batch at once.

nats-py's `publish_async` spends more CPU per message than the rest of the
ingest path together (a task for its stall timeout, random reply tokens, header
validation, a write per message). Here a batch of messages becomes one buffer
of HPUB frames written in one go, and each acknowledgement resolves a future
found by its reply token: the same JetStream protocol, a fraction of the CPU.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from marketing_runtime.envelope import MSG_ID_HEADER, too_large

log = logging.getLogger(__name__)
_HEADER_HEAD = f"NATS/1.0\r\n{MSG_ID_HEADER}: ".encode()
_CRLF = b"\r\n"
# How long the first of several concurrent publications waits for the others
# (see _write_outgoing); a few milliseconds on calls that wait tens under load.
# 5 ms rather than 2: a unary TrackEvent at 128 in flight costs about a tenth
# less CPU, and its median latency falls with the queueing (README, Performance).
DEFAULT_GROUP_COMMIT_S = 0.005


@dataclass(frozen=True, slots=True)
class Ack:
    """JetStream stored the message (`duplicate`: it had it already, by id)."""

    duplicate: bool


class BatchPublisher:
    """Publishes batches on one connection and collects their acks.
    Message ids must be printable ASCII without spaces (they are header values)."""

    def __init__(self, nc: Client, *, group_commit_s: float = DEFAULT_GROUP_COMMIT_S) -> None:
        self._nc = nc
        self._group_commit_s = group_commit_s
        self._prefix = ""
        self._subscription: Subscription | None = None
        self._next_token = 0
        # reply token -> the batch waiting for that ack, and the message's place in it
        self._waiting: dict[str, tuple[_Batch, int]] = {}
        self._outgoing: list[bytes] = []
        # The task writing `_outgoing`, shared by every caller with frames in it.
        self._writer: asyncio.Task[None] | None = None

    async def publish(
        self, subject: str, messages: Sequence[tuple[str, bytes]], timeout_s: float
    ) -> list[Ack | None]:
        """Publish (message id, payload) pairs in order; one ack per message,
        or None where JetStream refused it or did not answer in `timeout_s`
        (the message may or may not be stored: publish it again, same id).
        A message larger than the server's max_payload is not sent at all
        (the server would close the connection): None, and never stored."""
        if not messages:
            return []
        await self._subscribe_once()
        batch = _Batch(len(messages))
        frames, tokens = self._frames(subject, messages, batch)
        others_in_flight = bool(self._waiting)
        self._waiting.update((token, (batch, index)) for token, index in tokens)
        try:
            if frames:
                await self._write(frames, linger=others_in_flight)
            # A timer, not asyncio.wait_for: that wraps the future in another
            # one and two callbacks, per call (one per unary TrackEvent).
            timer = asyncio.get_running_loop().call_later(timeout_s, batch.give_up)
            try:
                await batch.complete
            finally:
                timer.cancel()
            batch.log_refusals()
            return batch.acks
        finally:
            for token, _ in tokens:
                self._waiting.pop(token, None)

    def _frames(
        self, subject: str, messages: Sequence[tuple[str, bytes]], batch: _Batch
    ) -> tuple[list[bytes], list[tuple[str, int]]]:
        """The HPUB frames of the messages that fit the server's max_payload
        (headers and payload, as the server counts them), and their reply
        tokens with their places in the batch; the others are refused."""
        limit = self._nc.max_payload
        frames: list[bytes] = []
        tokens: list[tuple[str, int]] = []
        for index, (msg_id, payload) in enumerate(messages):
            header = b"".join((_HEADER_HEAD, msg_id.encode(), _CRLF, _CRLF))
            size = len(header) + len(payload)
            if size > limit:
                batch.refused(index, too_large(size, limit))
                continue
            token = str(self._next_token)
            self._next_token += 1
            line = f"HPUB {subject} {self._prefix}{token} {len(header)} {size}\r\n"
            frames += (line.encode(), header, payload, _CRLF)
            tokens.append((token, index))
        return frames, tokens

    async def _write(self, frames: list[bytes], *, linger: bool) -> None:
        self._outgoing += frames
        if self._writer is None:
            self._writer = asyncio.create_task(
                self._write_outgoing(self._group_commit_s if linger else 0.0)
            )
        # Shielded: a caller that is cancelled (its RPC ended) must not take
        # the write of the other callers' frames down with it.
        await asyncio.shield(self._writer)

    async def _write_outgoing(self, linger_s: float) -> None:
        """Group commit: under load (other publications awaiting their acks)
        the first caller waits `linger_s`, then writes the frames of every
        caller up to then: one write, one flush and one burst of acks for the
        unary RPCs that arrive together, not one each. That halves the CPU a
        TrackEvent costs at 128 in flight; a lone call is written at once.
        A failed write raises in every caller whose frames it held."""
        try:
            await asyncio.sleep(linger_s)  # let the other callers add their frames
            nc = self._nc
            while self._outgoing:
                data, self._outgoing = b"".join(self._outgoing), []
                # nats-py has no public call for pre-framed commands; these two are
                # what its own publish uses (pinned by tests/runtime/test_publisher.py).
                await nc._send_command(data)
                await nc._flush_pending()
        finally:
            self._outgoing = []
            self._writer = None

    async def _subscribe_once(self) -> None:
        if self._subscription is None:
            self._prefix = self._nc.new_inbox() + "."
            self._subscription = await self._nc.subscribe(self._prefix + "*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        waiting = self._waiting.pop(msg.subject[len(self._prefix) :], None)
        if waiting is None:
            return  # answered after its batch gave up waiting
        batch, index = waiting
        data = msg.data
        if b'"error"' in data or not data:
            batch.refused(index, _error_text(msg))
        else:
            # Plain acks carry no "duplicate" key: parse only the rare ones that do.
            batch.acked(index, Ack(duplicate=b'"duplicate"' in data and _is_duplicate(data)))

    def abandon(self) -> None:
        """The connection closed for good: stop waiting for acks that cannot
        come (each unanswered message gets None at once, not after its timeout)."""
        for batch, _ in list(self._waiting.values()):
            batch.give_up()


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


class _Batch:
    """The acks of one publication, filled in as they arrive: one future for
    the whole batch, not one per message (that halves the cost of an ack)."""

    def __init__(self, size: int) -> None:
        self.acks: list[Ack | None] = [None] * size
        self.complete: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unanswered = size
        self._refusals: list[str] = []

    def acked(self, index: int, ack: Ack) -> None:
        self.acks[index] = ack
        self._answered()

    def refused(self, index: int, reason: str) -> None:
        self._refusals.append(reason)
        self._answered()

    def _answered(self) -> None:
        self._unanswered -= 1
        if self._unanswered == 0:
            self.give_up()

    def give_up(self) -> None:
        """Stop waiting: every ack not in by now stays None."""
        if not self.complete.done():
            self.complete.set_result(None)

    def log_refusals(self) -> None:
        if self._refusals:
            log.warning(
                "JetStream refused %d of %d publications: %s",
                len(self._refusals),
                len(self.acks),
                self._refusals[0],
            )
