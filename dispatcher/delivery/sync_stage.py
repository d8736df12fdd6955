"""What the two stages of a full contact sync share (`sync.py` imports a
chunk's people, `sync_consent.py` sends their consent): a fetched batch of
messages handled as a whole, kept alive meanwhile, handed on (or reported),
then acked; the people of a chunk and how each ended; and giving up.

A message is reported given up (its `error` saying why), then acked, when it
fails in each of `max_attempts` deliveries (the consumer counts no attempts
itself: max_deliver is -1), or cannot be read but names its sync and sequence
in its Msg-Id: its sync then ends (FAILED) instead of waiting. Given up in
the import stage, no one in the chunk counts as imported; in the consent
stage, its people were imported and each fails ("consent: ...").

One case counts people wrongly: a chunk whose consent stage was handed on,
then failed to be acked in each of its deliveries (the import stage's own
results or acks failing), is reported given up by the import stage, and the
service keeps the first result of a chunk it gets. Its people are then
counted lost, though they were imported and their consent is sent.

In a result, every person of the chunk is counted once: imported, or listed
in `failures` (refused by the import or by a consent call), or, when a job or
call failed as a whole, neither, with the reason in `error`. A person whose
provider state is newer than the chunk's (sync.py) counts as imported: the
provider holds them, as current as they are.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import Clock, Sleep
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER
from marketing_runtime.timestamps import to_timestamp
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError

from dispatcher import metrics
from dispatcher.delivery.calls import CallRunner
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import ConnectionEnded, Holding, Interval, holding
from dispatcher.delivery.outcomes import REPORT_TIMEOUT_S
from dispatcher.ordering.fences import Fences, person_key
from dispatcher.providers.base import ConsentState, ImportContact, Provider

log = logging.getLogger(__name__)
MAX_REASON = 300
# Why a chunk named only by its Msg-Id was given up on.
UNREADABLE_CHUNK = "the chunk could not be read"
# The consent stage's Msg-Id: its chunk's `<sync_id>:<sequence>` and this.
CONSENT_MSG_ID_SUFFIX = ":consent"


@dataclass(eq=False)
class Chunk:
    msg: Msg
    sync_id: str
    sequence: int
    outbox_sequence: int  # 0: unknown, nothing is skipped
    people: list[Person] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    error: str = ""
    # In the consent stage: what the import made of the chunk, whose people
    # here are the ones with consent to send (counted in it as imported).
    imported: bus_pb2.ContactSyncChunkResult | None = None


@dataclass(eq=False, slots=True)
class Person:
    chunk: Chunk
    email: str  # as the service normalised it
    # The import stage's: None when unreadable (failed as it arrived).
    contact: ImportContact | None = None
    # The import stage's: the consent state as the chunk carried it (encoded,
    # without the contact id), handed on.
    consent_bytes: bytes | None = None
    # The consent stage's.
    consent: ConsentState | None = None
    failure: str = ""  # refused, by the import or a consent call
    lost: bool = False  # in a job or call that failed as a whole (`chunk.error`)

    @property
    def pending(self) -> bool:
        return not self.failure and not self.lost

    @property
    def contact_key(self) -> str:
        return person_key(self.email)


@dataclass(frozen=True)
class StageSettings:
    connection_ended: Callable[[], asyncio.Event]
    max_attempts: int
    backoff_base_s: float
    keepalive_s: Interval
    clock: Clock
    sleep: Sleep = asyncio.sleep


class ChunkStage(abc.ABC):
    """A consumer's batches of sync messages, each read into a `Chunk`."""

    # What follows `<sync_id>:<sequence>` in the Msg-Id of this stage's messages.
    msg_id_suffix = ""

    def __init__(
        self,
        provider: Provider,
        bus: Bus,
        gate: ProviderGate,
        fences: Fences,
        settings: StageSettings,
    ) -> None:
        self._provider = provider
        self._bus = bus
        self._gate = gate
        self._fences = fences
        self._settings = settings
        self._sleep = settings.sleep

    @abc.abstractmethod
    def pause_left(self) -> float:
        """Seconds the stage's endpoints are throttled for: fetching more would not help."""

    @abc.abstractmethod
    def _read(self, msg: Msg) -> Chunk | None:
        """The chunk of a message; None for one that cannot be read at all."""

    @abc.abstractmethod
    async def _work(self, chunks: list[Chunk], held: Holding) -> None:
        """The stage's provider calls for these chunks."""

    @abc.abstractmethod
    async def _hand_on(self, chunks: list[Chunk]) -> None:
        """Publish what follows the work (awaited before the chunks are acked)."""

    @abc.abstractmethod
    def _give_up_chunk(self, chunk: Chunk, reason: str) -> None:
        """Mark a chunk given up on as a whole, and its people."""

    async def handle(self, messages: list[Msg]) -> None:
        chunks = await self._read_each(messages)
        try:
            await self._handle(messages, chunks)
        finally:
            # A chunk and its people refer to each other: without this, ten
            # thousand people a batch would wait for the cyclic collector,
            # which the dispatcher runs seldom (gc_tuning), and memory grew.
            for chunk in chunks:
                chunk.people.clear()

    async def _read_each(self, messages: list[Msg]) -> list[Chunk]:
        """The readable chunks, the event loop let go between them: reading a batch at
        once (ten to twenty thousand people) kept it for tens of milliseconds, while
        requests stamped by the budget waited to leave (they must within 50 ms)."""
        chunks = []
        for msg in messages:
            if (chunk := self._read(msg)) is not None:
                chunks.append(chunk)
            await asyncio.sleep(0)
        return chunks

    async def _handle(self, messages: list[Msg], chunks: list[Chunk]) -> None:
        readable = {id(chunk.msg) for chunk in chunks}
        await self._drop_unreadable([msg for msg in messages if id(msg) not in readable])
        try:
            await self._handle_readable(chunks)
        except Exception as exc:
            # Delivered for the last time: report the chunks given up, or their
            # sync would wait for them for good. The others go back.
            attempts = self._settings.max_attempts
            last = [c for c in chunks if _deliveries(c.msg) >= attempts]
            if not last:
                raise
            log.exception("sync chunks given up after %d deliveries", attempts)
            await self._give_up(last, f"failed in each of {attempts} deliveries, last: {exc!r}")
            if len(last) < len(chunks):
                raise

    async def _drop_unreadable(self, messages: list[Msg]) -> None:
        """A message that cannot be read is dropped; one whose Msg-Id names its
        sync and sequence is reported given up first, so that its sync can end."""
        named = [c for msg in messages if (c := self._named_by_msg_id(msg)) is not None]
        if named:
            await self._give_up(named, UNREADABLE_CHUNK)
        dropped = {id(c.msg) for c in named}
        for msg in messages:
            if id(msg) not in dropped:
                await msg.term()  # no sync to report it to; logged by _read

    def _named_by_msg_id(self, msg: Msg) -> Chunk | None:
        """A chunk with no people, its sync and sequence read from the Msg-Id
        (`<sync_id>:<sequence>` and the stage's suffix); None when the message
        has none of that shape."""
        msg_id = (msg.headers or {}).get(MSG_ID_HEADER, "")
        if not msg_id.endswith(self.msg_id_suffix):
            return None
        named = msg_id[: len(msg_id) - len(self.msg_id_suffix)]
        sync_id, _, sequence = named.rpartition(":")
        if not sync_id or not sequence.isdigit():
            return None
        return Chunk(msg, sync_id, int(sequence), 0)

    async def _give_up(self, chunks: list[Chunk], reason: str) -> None:
        """Report `chunks` given up on as a whole, then ack them."""
        for chunk in chunks:
            self._give_up_chunk(chunk, reason)
        await self.publish_results(chunks)
        for chunk in chunks:
            await chunk.msg.ack()

    async def _handle_readable(self, chunks: list[Chunk]) -> None:
        ended = self._settings.connection_ended()
        held_messages = [chunk.msg for chunk in chunks]
        async with holding(
            held_messages, every_s=self._settings.keepalive_s, sleep=self._sleep, ended=ended
        ) as held:
            try:
                await self._work(chunks, held)
                await self._hand_on(chunks)
                held.settled(held_messages)
                for msg in held_messages:
                    await msg.ack()
            except* ConnectionEnded:
                count = await held.hand_back()
                log.warning("NATS connection ended mid-sync: %d chunks handed back", count)

    async def not_newer_at_provider(self, aspect: str, people: list[Person]) -> list[Person]:
        """The people whose state of `aspect` in their chunk is at least as new
        as what the ordered path applied (sync.py). The others are left
        pending: counted as imported, not sent."""
        keyed = [p for p in people if p.chunk.outbox_sequence > 0]
        fences = await self._fences.applied_to(aspect, (p.contact_key for p in keyed))
        current = [p for p in keyed if fences[p.contact_key] > p.chunk.outbox_sequence]
        if current:
            metrics.SYNC_NEWER_AT_PROVIDER.labels(aspect).inc(len(current))
            log.info("%d people's %s is newer at the provider: not sent", len(current), aspect)
        skipped = {id(p) for p in current}
        return [p for p in people if id(p) not in skipped]

    def runner(self, held: Holding, *, lost: bool, prefix: str = "") -> CallRunner[Person]:
        """Calls over people. Refused people fail; with `lost`, the people of a
        call given up on as a whole are lost with their chunks (their job never
        started), else they fail one by one."""

        def refused(people: Sequence[Person], reason: str) -> None:
            for p in people:
                p.failure = (prefix + reason)[:MAX_REASON]

        return CallRunner(
            gate=self._gate,
            guard=held.ensure_connected,
            refused=refused,
            gave_up=lose if lost else refused,
            max_attempts=self._settings.max_attempts,
            backoff_base_s=self._settings.backoff_base_s,
            sleep=self._sleep,
            bulk=True,  # a sync's consent calls too: live ones keep the compliance share
        )

    async def publish_results(self, chunks: Sequence[Chunk]) -> None:
        """A result per chunk, each with a Msg-Id of its chunk's: a chunk
        handled again after a redelivery reports once."""
        finished = to_timestamp(self._settings.clock())
        messages = []
        for chunk in chunks:
            result = result_of(chunk)
            result.finish_time.CopyFrom(finished)
            messages.append(
                (f"{chunk.sync_id}:{chunk.sequence}:result", result.SerializeToString())
            )
        await self.publish(topology.SYNC_RESULTS_SUBJECT, messages)

    async def publish(self, subject: str, messages: Sequence[tuple[str, bytes]]) -> None:
        """(Msg-Id, bytes) to `subject`, each acknowledged by JetStream. A stream
        without the subject (a process of the release before it declared the
        stream again, mid-upgrade) is declared again, then the messages go."""
        js = self._bus.js
        if js is None:  # the chunks stay unacked and come back after the ack wait
            raise ConnectionError("NATS is not connected: cannot hand on a sync's chunks")
        try:
            await self._publish_all(js, subject, messages)
        except NoStreamResponseError:
            log.warning("no stream takes %s: declaring the topology again", subject)
            await topology.declare(js)
            await self._publish_all(js, subject, messages)

    @staticmethod
    async def _publish_all(
        js: JetStreamContext, subject: str, messages: Sequence[tuple[str, bytes]]
    ) -> None:
        futures = [
            await js.publish_async(subject, data, headers={MSG_ID_HEADER: msg_id})
            for msg_id, data in messages
        ]
        await asyncio.wait_for(asyncio.gather(*futures), REPORT_TIMEOUT_S)


def result_of(chunk: Chunk) -> bus_pb2.ContactSyncChunkResult:
    """What became of the chunk's people so far (no finish time)."""
    failures = [
        bus_pb2.ContactSyncFailure(email=p.email, reason=p.failure)
        for p in chunk.people
        if p.failure
    ]
    base = chunk.imported
    if base is None:
        imported = sum(1 for p in chunk.people if p.pending)
        error, job_ids = chunk.error, chunk.job_ids
    else:  # the people here are counted in it as imported
        imported = base.imported - sum(1 for p in chunk.people if not p.pending)
        failures = [*base.failures, *failures]
        error, job_ids = chunk.error or base.error, list(base.job_ids)
    return bus_pb2.ContactSyncChunkResult(
        sync_id=chunk.sync_id,
        sequence=chunk.sequence,
        imported=max(imported, 0),
        failures=failures,
        error=error,
        job_ids=job_ids,
    )


def _deliveries(msg: Msg) -> int:
    """How many times the server delivered `msg`, this time included."""
    return int(msg.metadata.num_delivered or 1)


def lose(people: Sequence[Person], reason: str) -> None:
    for p in people:
        p.lost = True
    for chunk in chunks_of(people):
        chunk.error = chunk.error or reason[:MAX_REASON]


def chunks_of(people: Sequence[Person]) -> list[Chunk]:
    return list({id(p.chunk): p.chunk for p in people}.values())
