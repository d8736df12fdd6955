"""Delivers a full contact sync: chunks of contacts (`ContactSyncChunk`, about a
thousand people each, published by the service's sync driver) go to the
provider through its bulk profile import.

A fetched batch of chunks is handled as a whole:
1. its people are packed into as few import jobs as the provider's limits allow
   (`Limits.import_profiles`: Klaviyo 10,000 people / 5 MB, about ten chunks a
   job; ActiveCampaign 250, several jobs a chunk);
2. each job is started through the gate (START_IMPORT) and polled (IMPORT_STATUS)
   with backoff until the provider has finished it; the people it refused are
   matched back to their chunks by email;
3. the consent of the people imported who have a consent state is sent by the
   provider's consent calls (`plan_consent`), which have their own budgets: one
   operation after another, the calls of one operation side by side;
4. a `ContactSyncChunkResult` per chunk is published, then the chunks are acked.

A chunk is reported given up (its `error` saying why, no one imported), then
acked, when it fails in each of `max_attempts` deliveries (the consumer
counts no attempts itself: max_deliver is -1), or cannot be read but names
its sync and sequence in its Msg-Id: its sync then ends instead of waiting.

The chunks are kept alive (+WPI) meanwhile. A replica that dies mid-job leaves
its chunks unacked: they are delivered again and imported again (an import is
an upsert, so nothing is applied twice in effect). Memory stays flat: a loop
holds one batch of chunks at a time.

In a result, every person of the chunk is counted once: imported, or listed
in `failures` (refused by the import or by a consent call), or, when a job or
call failed as a whole, neither, with the reason in `error`. A person whose
provider state is newer than the chunk's (below) counts as imported: the
provider holds them, as current as they are.

Never older than the provider. A chunk carries `outbox_sequence`, W: every
change to its people with an outbox sequence up to W is in it, every later
one has a larger sequence (the service reads them under a share lock). The
ordered contacts worker records per person and aspect the newest sequence it
applied, F (`Fences`). Per aspect, right before sending it (the profile before
the import starts, the consent after the jobs are done, before its calls):
- F > W: a change newer than the chunk reached the provider; the chunk's
  state of that aspect is older and is not sent. An erasure after the chunk
  moves both fences past W, so an erased person is not re-created either.
- F <= W: the newest change applied is in the chunk, so the chunk's state is
  as new or newer, and is sent.
The reverse race, a sync applied, then an ordered change: a change with a
sequence above W is newer than the chunk, and the provider ends in its state,
as it should. One at or below W is in the chunk already, so it can only be
older: it takes the provider back for a while, but the changes that followed
it up to W travel the ordered path behind it (in stream order, each with the
whole state of its aspect), and the newest of them is exactly the chunk's
state. Either way the provider ends in the person's newest state.
What this does not cover: an ordered change above W whose call reaches the
provider while the sync's call for the same person is in flight, its fence
written only after the sync read it (the ordered worker writes fences once
its batch is done). The sync's older state may then land last. The window is
the sync's consent calls of one batch (or, for the profile, its import job);
a ReconcileContact, or the person's next change, repairs it. (The fences are
read by direct gets, a thousand keys a request, which a replica of the bucket
may answer a moment behind its leader: that widens the window by the lag.)

Without an `outbox_sequence` (a service that did not say) nothing is skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.clock import Clock, Sleep
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER
from marketing_runtime.timestamps import to_timestamp
from nats.aio.msg import Msg

from dispatcher import metrics
from dispatcher.delivery import translate
from dispatcher.delivery.calls import CallRunner, split_by_limits
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import ConnectionEnded, Holding, Interval, holding
from dispatcher.delivery.outcomes import REPORT_TIMEOUT_S
from dispatcher.delivery.packing import estimated_size, pack
from dispatcher.delivery.retry import exhausted, retry_delay
from dispatcher.ordering.fences import CONSENT, PROFILE, Fences, person_key
from dispatcher.providers.base import (
    IMPORT_STATUS,
    START_IMPORT,
    BulkCall,
    ImportContact,
    ImportStatus,
    OperationLimits,
    Provider,
)
from dispatcher.providers.errors import PermanentProviderError, RetryableProviderError

log = logging.getLogger(__name__)
# Contacts the service puts in one chunk; sizes the batch of chunks fetched.
EXPECTED_CHUNK_CONTACTS = 1000
_MAX_REASON = 300


@dataclass(frozen=True)
class Polling:
    """How a started job is waited for: the first look after `first_s`, then
    twice as long each time up to `max_s`; given up on after `give_up_s`."""

    first_s: float = 0.5
    max_s: float = 10.0
    give_up_s: float = 3600.0


@dataclass(eq=False)
class Chunk:
    msg: Msg
    sync_id: str
    sequence: int
    outbox_sequence: int  # 0: unknown, nothing is skipped
    people: list[Person] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(eq=False)
class Person:
    chunk: Chunk
    contact: ImportContact | None  # None: unreadable, failed as it arrived
    email: str  # as the service normalised it
    failure: str = ""  # refused, by the import or a consent call
    lost: bool = False  # in a job or call that failed as a whole (`chunk.error`)

    @property
    def pending(self) -> bool:
        return not self.failure and not self.lost

    @property
    def contact_key(self) -> str:
        return person_key(self.email)


class SyncWorker:
    def __init__(
        self,
        provider: Provider,
        bus: Bus,
        gate: ProviderGate,
        fences: Fences,
        *,
        connection_ended: Callable[[], asyncio.Event],
        max_attempts: int,
        backoff_base_s: float,
        keepalive_s: Interval,
        newsletter_list_id: str | None,
        clock: Clock,
        polling: Polling = Polling(),
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if provider.limits.import_profiles is None:
            raise ValueError("the provider states no limits for a bulk profile import")
        self._limits: OperationLimits = provider.limits.import_profiles
        self._provider = provider
        self._bus = bus
        self._gate = gate
        self._fences = fences
        self._connection_ended = connection_ended
        self._max_attempts = max_attempts
        self._base_s = backoff_base_s
        self._keepalive_s = keepalive_s
        self._list_id = newsletter_list_id or None
        self._clock = clock
        self._polling = polling
        self._sleep = sleep

    def chunks_per_batch(self, most: int) -> int:
        """Chunks fetched at once: enough for one full job, at most `most`."""
        per_job = -(-self._limits.max_items // EXPECTED_CHUNK_CONTACTS)
        return max(1, min(per_job, most))

    def pause_left(self) -> float:
        """While the import endpoints are throttled, fetching more would not help."""
        return self._gate.pause_left(START_IMPORT, IMPORT_STATUS)

    async def handle(self, messages: list[Msg]) -> None:
        chunks = [chunk for chunk in map(_chunk, messages) if chunk is not None]
        try:
            await self._handle(messages, chunks)
        finally:
            # A chunk and its people refer to each other: without this, ten
            # thousand people a batch would wait for the cyclic collector,
            # which the dispatcher runs seldom (gc_tuning), and memory grew.
            for chunk in chunks:
                chunk.people.clear()

    async def _handle(self, messages: list[Msg], chunks: list[Chunk]) -> None:
        readable = {id(chunk.msg) for chunk in chunks}
        await self._drop_unreadable([msg for msg in messages if id(msg) not in readable])
        try:
            await self._handle_readable(chunks)
        except Exception as exc:
            # Delivered for the last time: report the chunks given up, or their
            # sync would wait for them for good. The others go back.
            last = [c for c in chunks if _deliveries(c.msg) >= self._max_attempts]
            if not last:
                raise
            log.exception("sync chunks given up after %d deliveries", self._max_attempts)
            reason = f"failed in each of {self._max_attempts} deliveries, last: {exc!r}"
            await self._give_up(last, reason)
            if len(last) < len(chunks):
                raise

    async def _drop_unreadable(self, messages: list[Msg]) -> None:
        """A message that is not a chunk is dropped; one whose Msg-Id names its
        sync and sequence (`<sync_id>:<sequence>`) is reported given up first,
        so that its sync can end."""
        named = [c for c in map(_named_by_msg_id, messages) if c is not None]
        if named:
            await self._give_up(named, "the chunk could not be read")
        dropped = {id(c.msg) for c in named}
        for msg in messages:
            if id(msg) not in dropped:
                await msg.term()  # no sync to report it to; logged by _chunk

    async def _give_up(self, chunks: list[Chunk], reason: str) -> None:
        """Report `chunks` given up on as a whole (no one in them imported),
        then ack them."""
        for chunk in chunks:
            chunk.job_ids.clear()
            for p in chunk.people:
                p.failure, p.lost = "", True
            chunk.error = reason[:_MAX_REASON]
        await self._publish(chunks)
        for chunk in chunks:
            await chunk.msg.ack()

    async def _handle_readable(self, chunks: list[Chunk]) -> None:
        ended = self._connection_ended()
        held_messages = [chunk.msg for chunk in chunks]
        async with holding(
            held_messages, every_s=self._keepalive_s, sleep=self._sleep, ended=ended
        ) as held:
            try:
                await self._deliver(chunks, held)
                await self._publish(chunks)
                held.settled(held_messages)
                for msg in held_messages:
                    await msg.ack()
            except* ConnectionEnded:
                count = await held.hand_back()
                log.warning("NATS connection ended mid-sync: %d chunks handed back", count)

    async def _deliver(self, chunks: list[Chunk], held: Holding) -> None:
        people = [p for chunk in chunks for p in chunk.people if p.pending]
        importing = await self._not_newer_at_provider(PROFILE, people)
        sizes = [estimated_size(_contact(p).profile) for p in importing]
        jobs: list[tuple[str, list[Person]]] = []
        starter = self._runner(held, lost=True)
        for job in pack(importing, sizes, self._limits):
            await starter.run(BulkCall(START_IMPORT, job, self._starting(jobs)))
        # Polled side by side: a batch may hold several jobs (ActiveCampaign's
        # 250 people a job), and each poll draws from the endpoint's budget.
        async with asyncio.TaskGroup() as polls:
            for job_id, members in jobs:
                polls.create_task(self._await_job(job_id, members, held))
        await self._send_consent([p for p in people if p.pending], held)

    async def _not_newer_at_provider(self, aspect: str, people: list[Person]) -> list[Person]:
        """The people whose state of `aspect` in their chunk is at least as new
        as what the ordered path applied (see the module). The others are left
        pending: counted as imported, not sent."""
        keyed = [p for p in people if p.chunk.outbox_sequence > 0]
        fences = await self._fences.applied_to(aspect, (p.contact_key for p in keyed))
        current = [p for p in keyed if fences[p.contact_key] > p.chunk.outbox_sequence]
        if current:
            metrics.SYNC_NEWER_AT_PROVIDER.labels(aspect).inc(len(current))
            log.info("%d people's %s is newer at the provider: not sent", len(current), aspect)
        skipped = {id(p) for p in current}
        return [p for p in people if id(p) not in skipped]

    def _starting(
        self, jobs: list[tuple[str, list[Person]]]
    ) -> Callable[[Sequence[Person]], Awaitable[None]]:
        """Sends a job's people; the job started is added to `jobs` and to the
        job ids of their chunks."""

        async def start(members: Sequence[Person]) -> None:
            contacts = [_contact(p) for p in members]
            job_id = await self._provider.start_import(contacts)
            jobs.append((job_id, list(members)))
            for chunk in _chunks_of(members):
                chunk.job_ids.append(job_id)

        return start

    async def _await_job(self, job_id: str, members: list[Person], held: Holding) -> None:
        """Poll until the job is done, within the polling budget; then match its
        refusals back to the people by email."""
        delay, waited, failures_in_row = self._polling.first_s, 0.0, 0
        while True:
            await self._sleep(delay)
            waited += delay
            try:
                status = await self._gate.call(
                    IMPORT_STATUS,
                    1,
                    lambda: self._provider.import_status(job_id),
                    guard=held.ensure_connected,
                    bulk=True,
                )
            except RetryableProviderError as exc:
                failures_in_row += 1
                if exhausted(failures_in_row, max_attempts=self._max_attempts):
                    return _lose(members, f"job {job_id}: status unknown: {exc}")
                await self._sleep(
                    retry_delay(failures_in_row, retry_after=exc.retry_after, base_s=self._base_s)
                )
                continue
            except PermanentProviderError as exc:
                return _lose(members, f"job {job_id}: status unknown: {exc}")
            failures_in_row = 0
            if status.done:
                return _finished(status, members)
            if waited >= self._polling.give_up_s:
                return _lose(members, f"job {job_id} not done after {waited:.0f} s")
            delay = min(delay * 2, self._polling.max_s)

    async def _send_consent(self, people: list[Person], held: Holding) -> None:
        """The provider's consent calls for the people imported with a consent
        state, each split by its operation's limits. The operations go one
        after another in the provider's order, which is each person's order
        (a person has at most one item in each); the calls of one operation,
        about different people, go side by side, each endpoint having a
        budget of its own (a batch of 10,000 makes about ten of each)."""
        with_consent = [p for p in people if _contact(p).consent is not None]
        sending = await self._not_newer_at_provider(CONSENT, with_consent)
        states = [(p, c) for p in sending if (c := _contact(p).consent) is not None]
        runner = self._runner(held, lost=False, prefix="consent: ")
        planned = self._provider.plan_consent(states, self._list_id)
        parts = split_by_limits(planned, self._provider.limits.consent)
        for _, stage in itertools.groupby(parts, key=lambda call: call.operation):
            async with asyncio.TaskGroup() as calls:
                for call in stage:
                    calls.create_task(runner.run(call))

    def _runner(self, held: Holding, *, lost: bool, prefix: str = "") -> CallRunner[Person]:
        """Calls over people. Refused people fail; with `lost`, the people of a
        call given up on as a whole are lost with their chunks (their job never
        started), else they fail one by one."""

        def refused(people: Sequence[Person], reason: str) -> None:
            for p in people:
                p.failure = (prefix + reason)[:_MAX_REASON]

        return CallRunner(
            gate=self._gate,
            guard=held.ensure_connected,
            refused=refused,
            gave_up=_lose if lost else refused,
            max_attempts=self._max_attempts,
            backoff_base_s=self._base_s,
            sleep=self._sleep,
            bulk=True,  # a sync's consent calls too: live ones keep the compliance share
        )

    async def _publish(self, chunks: list[Chunk]) -> None:
        """A result per chunk, each with a Msg-Id of its chunk's: a chunk
        imported again after a redelivery reports once."""
        js = self._bus.js
        if js is None:  # the chunks stay unacked and come back after the ack wait
            raise ConnectionError("NATS is not connected: cannot report sync results")
        finished = to_timestamp(self._clock())
        futures = []
        for chunk in chunks:
            result = _result(chunk)
            result.finish_time.CopyFrom(finished)
            headers = {MSG_ID_HEADER: f"{chunk.sync_id}:{chunk.sequence}:result"}
            futures.append(
                await js.publish_async(
                    topology.SYNC_RESULTS_SUBJECT, result.SerializeToString(), headers=headers
                )
            )
        await asyncio.wait_for(asyncio.gather(*futures), REPORT_TIMEOUT_S)


def _chunk(msg: Msg) -> Chunk | None:
    """The chunk and its people; a person who cannot be read fails alone. None
    for a message that is not a chunk at all."""
    message = bus_pb2.ContactSyncChunk()
    try:
        message.ParseFromString(msg.data)
    except Exception:
        log.error("an unreadable sync chunk (%d bytes) dropped", len(msg.data))
        return None
    chunk = Chunk(msg, message.sync_id, message.sequence, message.outbox_sequence)
    for synced in message.contacts:
        chunk.people.append(_person(chunk, synced))
    return chunk


def _named_by_msg_id(msg: Msg) -> Chunk | None:
    """A chunk with no people, its sync and sequence read from the Msg-Id the
    service gives a chunk; None when the message has none of that shape."""
    sync_id, _, sequence = (msg.headers or {}).get(MSG_ID_HEADER, "").rpartition(":")
    if not sync_id or not sequence.isdigit():
        return None
    return Chunk(msg, sync_id, int(sequence), 0)


def _deliveries(msg: Msg) -> int:
    """How many times the server delivered `msg`, this time included."""
    return int(msg.metadata.num_delivered or 1)


def _person(chunk: Chunk, synced: bus_pb2.SyncedContact) -> Person:
    email = synced.profile.email
    try:
        consent = translate.consent_of(synced.consent) if synced.HasField("consent") else None
        contact = ImportContact(translate.contact_profile(synced.profile), consent)
    except ValueError as exc:  # custom properties that are not JSON
        return Person(chunk, None, email, failure=f"unreadable contact: {exc}"[:_MAX_REASON])
    return Person(chunk, contact, email)


def _finished(status: ImportStatus, members: list[Person]) -> None:
    by_email: dict[str, list[Person]] = {}
    for p in members:
        by_email.setdefault(p.email.strip().lower(), []).append(p)
    for failure in status.failures:
        for p in by_email.get(failure.email.strip().lower(), ()):
            p.failure = failure.reason[:_MAX_REASON]
    unaccounted = status.total - status.completed - status.failed
    if unaccounted > 0:  # cancelled part-way: who was imported is unknown
        _lose(
            [p for p in members if p.pending],
            f"job {status.job_id} ended with {unaccounted} of {status.total} people not imported",
        )


def _contact(p: Person) -> ImportContact:
    """A pending person's contact (only unreadable ones, failed already, have none)."""
    assert p.contact is not None
    return p.contact


def _lose(people: Sequence[Person], reason: str) -> None:
    for p in people:
        p.lost = True
    for chunk in _chunks_of(people):
        chunk.error = chunk.error or reason[:_MAX_REASON]


def _chunks_of(people: Sequence[Person]) -> list[Chunk]:
    return list({id(p.chunk): p.chunk for p in people}.values())


def _result(chunk: Chunk) -> bus_pb2.ContactSyncChunkResult:
    failures = [
        bus_pb2.ContactSyncFailure(email=p.email, reason=p.failure)
        for p in chunk.people
        if p.failure
    ]
    imported = sum(1 for p in chunk.people if p.pending)
    return bus_pb2.ContactSyncChunkResult(
        sync_id=chunk.sync_id,
        sequence=chunk.sequence,
        imported=imported,
        failures=failures,
        error=chunk.error,
        job_ids=chunk.job_ids,
    )
