"""Delivers a full contact sync, in two stages. This one imports: chunks of
contacts (`ContactSyncChunk`, about a thousand people each, published by the
service's sync driver) go to the provider through its bulk profile import;
`sync_consent.py` then sends their consent. What both share (batches handled
as a whole, results, giving up) is in `sync_stage.py`.

A fetched batch of chunks is handled as a whole:
1. its people are packed into as few import jobs as the provider's limits allow
   (`Limits.import_profiles`: Klaviyo 10,000 people / 5 MB, about ten chunks a
   job; ActiveCampaign 250, several jobs a chunk);
2. each job is started through the gate (START_IMPORT) and polled (IMPORT_STATUS)
   with backoff until the provider has finished it; the people it refused are
   matched back to their chunks by email;
3. per chunk, the consent states of the people imported who have one are
   handed on to the consent stage (`ContactSyncConsent` on
   `marketing.sync.consent`, Msg-Id `<sync_id>:<sequence>:consent`); a chunk
   with none has its `ContactSyncChunkResult` published at once;
4. then the chunks are acked.

Why two stages: Klaviyo's three consent endpoints take 750 calls a minute,
and a million people need 900 to 1,100 of each, so near the end of each
minute the consent calls wait for the next one. In one stage, imports waited
with them (a sync of a million took 98 s where the provider's limits allow
64). Now the people waiting for consent calls wait in the stream, on disk,
and the next imports go out meanwhile.

The chunks are kept alive (+WPI) meanwhile. A replica that dies mid-job leaves
its chunks unacked: they are delivered again and imported again (an import is
an upsert, so nothing is applied twice in effect), and their consent stage,
if it was published already, is dropped by JetStream as a duplicate. Memory
stays flat: a loop holds one batch of chunks at a time.

Never older than the provider. A chunk carries `outbox_sequence`, W: every
change to its people with an outbox sequence up to W is in it, every later
one has a larger sequence (the service reads them under a share lock). The
ordered contacts worker records per person and aspect the newest sequence it
applied, F (`Fences`). Per aspect, right before sending it (the profile before
the import starts, the consent in the consent stage, before its calls):
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
a consent batch's calls (read once for the batch, its operations may wait for
the provider's next minute: up to a minute or so), or, for the profile, its
import job; a ReconcileContact, or the person's next change, repairs it. (The fences are
read by direct gets, a thousand keys a request, which a replica of the bucket
may answer a moment behind its leader: that widens the window by the lag.)

Without an `outbox_sequence` (a service that did not say) nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from nats.aio.msg import Msg

from dispatcher.delivery import translate
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import Holding
from dispatcher.delivery.packing import estimated_size, pack
from dispatcher.delivery.retry import exhausted, retry_delay
from dispatcher.delivery.sync_stage import (
    CONSENT_MSG_ID_SUFFIX,
    MAX_REASON,
    Chunk,
    ChunkStage,
    Person,
    StageSettings,
    chunks_of,
    lose,
    result_of,
)
from dispatcher.ordering.fences import PROFILE, Fences
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


@dataclass(frozen=True)
class Polling:
    """How a started job is waited for: the first look after `first_s`, then
    twice as long each time up to `max_s`; given up on after `give_up_s`."""

    first_s: float = 0.5
    max_s: float = 10.0
    give_up_s: float = 3600.0


class SyncWorker(ChunkStage):
    def __init__(
        self,
        provider: Provider,
        bus: Bus,
        gate: ProviderGate,
        fences: Fences,
        settings: StageSettings,
        *,
        polling: Polling = Polling(),
    ) -> None:
        if provider.limits.import_profiles is None:
            raise ValueError("the provider states no limits for a bulk profile import")
        super().__init__(provider, bus, gate, fences, settings)
        self._limits: OperationLimits = provider.limits.import_profiles
        self._polling = polling

    def chunks_per_batch(self, most: int) -> int:
        """Chunks fetched at once: enough for one full job, at most `most`."""
        per_job = -(-self._limits.max_items // EXPECTED_CHUNK_CONTACTS)
        return max(1, min(per_job, most))

    def pause_left(self) -> float:
        """While the import endpoints are throttled, fetching more would not help."""
        return self._gate.pause_left(START_IMPORT, IMPORT_STATUS)

    def _read(self, msg: Msg) -> Chunk | None:
        """The chunk and its people; a person who cannot be read fails alone."""
        message = bus_pb2.ContactSyncChunk()
        try:
            message.ParseFromString(msg.data)
        except Exception:
            log.error("an unreadable sync chunk (%d bytes) dropped", len(msg.data))
            return None
        chunk = Chunk(msg, message.sync_id, message.sequence, message.outbox_sequence)
        for synced in message.contacts:
            chunk.people.append(_person(chunk, synced))
        # Read: the message's bytes are not needed again (its ack, nak and +WPI
        # use the reply subject, its Msg-Id the headers).
        msg.data = b""
        return chunk

    def _give_up_chunk(self, chunk: Chunk, reason: str) -> None:
        """No one in it imported: its jobs' outcome is unknown or never came."""
        chunk.job_ids.clear()
        for p in chunk.people:
            p.failure, p.lost = "", True
        chunk.error = reason[:MAX_REASON]

    async def _work(self, chunks: list[Chunk], held: Holding) -> None:
        people = [p for chunk in chunks for p in chunk.people if p.pending]
        importing = await self.not_newer_at_provider(PROFILE, people)
        sizes = [estimated_size(_contact(p).profile) for p in importing]
        jobs: list[tuple[str, list[Person]]] = []
        starter = self.runner(held, lost=True)
        for job in pack(importing, sizes, self._limits):
            await starter.run(BulkCall(START_IMPORT, job, self._starting(jobs)))
        for p in people:
            p.contact = None  # sent: only the consent is handed on
        # Polled side by side: a batch may hold several jobs (ActiveCampaign's
        # 250 people a job), and each poll draws from the endpoint's budget.
        async with asyncio.TaskGroup() as polls:
            for job_id, members in jobs:
                polls.create_task(self._await_job(job_id, members, held))

    async def _hand_on(self, chunks: list[Chunk]) -> None:
        """The consent stage of each chunk with consent to send; the result of
        each other one."""
        consent: list[tuple[str, bytes]] = []
        done: list[Chunk] = []
        for chunk in chunks:
            states = [
                p.consent_bytes for p in chunk.people if p.pending and p.consent_bytes is not None
            ]
            if not states:
                done.append(chunk)
                continue
            stage = bus_pb2.ContactSyncConsent(
                imported=result_of(chunk), outbox_sequence=chunk.outbox_sequence
            )
            people = stage.people
            for state in states:
                people.add().MergeFromString(state)
            msg_id = f"{chunk.sync_id}:{chunk.sequence}{CONSENT_MSG_ID_SUFFIX}"
            consent.append((msg_id, stage.SerializeToString()))
        if consent:
            await self.publish(topology.SYNC_CONSENT_SUBJECT, consent)
        if done:
            await self.publish_results(done)

    def _starting(
        self, jobs: list[tuple[str, list[Person]]]
    ) -> Callable[[Sequence[Person]], Awaitable[None]]:
        """Sends a job's people; the job started is added to `jobs` and to the
        job ids of their chunks."""

        async def start(members: Sequence[Person]) -> None:
            contacts = [_contact(p) for p in members]
            job_id = await self._provider.start_import(contacts)
            jobs.append((job_id, list(members)))
            for chunk in chunks_of(members):
                chunk.job_ids.append(job_id)

        return start

    async def _await_job(self, job_id: str, members: list[Person], held: Holding) -> None:
        """Poll until the job is done, within the polling budget; then match its
        refusals back to the people by email."""
        delay, waited, failures_in_row = self._polling.first_s, 0.0, 0
        attempts = self._settings.max_attempts
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
                if exhausted(failures_in_row, max_attempts=attempts):
                    return lose(members, f"job {job_id}: status unknown: {exc}")
                await self._sleep(
                    retry_delay(
                        failures_in_row,
                        retry_after=exc.retry_after,
                        base_s=self._settings.backoff_base_s,
                    )
                )
                continue
            except PermanentProviderError as exc:
                return lose(members, f"job {job_id}: status unknown: {exc}")
            failures_in_row = 0
            if status.done:
                return _finished(status, members)
            if waited >= self._polling.give_up_s:
                return lose(members, f"job {job_id} not done after {waited:.0f} s")
            delay = min(delay * 2, self._polling.max_s)


def _person(chunk: Chunk, synced: bus_pb2.SyncedContact) -> Person:
    email = synced.profile.email
    try:
        contact = ImportContact(translate.contact_profile(synced.profile))
    except ValueError as exc:  # custom properties that are not JSON
        return Person(chunk, email, failure=f"unreadable contact: {exc}"[:MAX_REASON])
    return Person(chunk, email, contact, consent_bytes=_consent_bytes(synced))


def _consent_bytes(synced: bus_pb2.SyncedContact) -> bytes | None:
    """The person's consent state as the consent stage takes it, encoded. (Bytes,
    not the message: a part of a parsed message keeps all of it alive, upb
    allocating it in one arena, and a chunk's people wait seconds for their
    job. Held so, the import stage's 40 chunks took some 25 MB less.)"""
    if not synced.HasField("consent"):
        return None
    state = synced.consent
    state.ClearField("contact_id")  # the calls need none: half the bytes
    return state.SerializeToString()


def _finished(status: ImportStatus, members: list[Person]) -> None:
    by_email: dict[str, list[Person]] = {}
    for p in members if status.failures else ():
        by_email.setdefault(p.email.strip().lower(), []).append(p)
    for failure in status.failures:
        for p in by_email.get(failure.email.strip().lower(), ()):
            p.failure = failure.reason[:MAX_REASON]
    unaccounted = status.total - status.completed - status.failed
    if unaccounted > 0:  # cancelled part-way: who was imported is unknown
        lose(
            [p for p in members if p.pending],
            f"job {status.job_id} ended with {unaccounted} of {status.total} people not imported",
        )


def _contact(p: Person) -> ImportContact:
    """A pending person's contact, until their jobs have started (only
    unreadable ones, failed already, have none before that)."""
    assert p.contact is not None
    return p.contact
