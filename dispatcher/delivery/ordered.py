"""What the two ordered workers share (contacts.py: profile, consent, list and erasure work;
enrolments.py: flow enrolments): a fetched batch handled in order under a lease of its own.

Ordering, per person, across retries and replicas:
1. One replica at a time processes each ordered consumer: it holds that consumer's lease in
   NATS KV (others stand by and take over when it lapses).
2. It handles a fetched batch in stream order and retries failures in place
   (holding the messages with in_progress) rather than nak'ing them, so no
   later change of the same person can overtake a failed one.
3. Every consent payload carries the person's whole consent state, so within
   a batch only the newest change per person and aspect is sent; older ones
   are reported SUPERSEDED. An enrolment's end supersedes its own enrolment's
   beginning, never another enrolment's.
4. A fence per person and aspect (in NATS KV) records the newest sequence
   applied; a redelivered older change (after a failover) is never sent.
   An enrolment's fences are kept in a bucket of their own, for a while only
   (topology.ENROLMENT_FENCE_MAX_AGE_S says why that is long enough).
5. A message of many enrolments' beginnings (KIND_ENROLMENTS_BEGUN) is read as
   one piece of work per beginning, each its person's and its enrolment's, so
   rules 3 and 4 hold for each; but it makes one result, and once all of it
   was applied one fence of its own says so (`BEGUN`.<its id>), not one per
   enrolment. Only when some beginnings failed are the others fenced one by
   one, so that the message's re-drive sends only the failed ones again.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.clock import Sleep
from marketing_runtime.consumer_loop import MoreMessages
from marketing_runtime.envelope import MSG_ID_HEADER
from marketing_runtime.timestamps import epoch_seconds
from nats.aio.msg import Msg
from nats.errors import NotJSMessageError

from dispatcher.delivery.calls import CallRunner
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import ConnectionEnded, Holding, Interval, holding
from dispatcher.delivery.outcomes import Outcome, Reporter
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.ordering.fences import CONSENT, PROFILE, Fences
from dispatcher.ordering.lease import Lease
from dispatcher.providers.base import BulkCall, EnrolmentChange, Provider

M = TypeVar("M")
W = TypeVar("W")
PlanT = TypeVar("PlanT")  # what a worker works out ahead for a segment (`OrderedWorker._plan`)
log = logging.getLogger(__name__)
# What comes for the next part, waited for until a monotonic time (None: as long as
# the part before is sent): `parts_of`'s `awaited`.
Awaited = Callable[[float | None], Awaitable[list[M]]]
ERASE = "erase"
# A person's enrolment in one of our flows: fenced per enrolment, as
# `FLOW.<enrolment id>` (a newer change of one enrolment supersedes only that
# enrolment's older ones: two carts of one person in one flow are two enrolments).
FLOW = "flow"
# A person's device token: fenced per token, as `PUSH.<token id>` (the newest change of
# one token wins; another token's says nothing of it).
PUSH = "push"
UNREADABLE = "unreadable"  # failed as it arrived: no kind or no payload of its kind
# A KIND_ENROLMENTS_BEGUN applied in full: fenced as `BEGUN.<its delivery id>`.
BEGUN = "begun"
# The failed beginnings a message's error names, at most (and how many more).
NAMED_FAILURES = 10
# Fence reads and writes in flight at once: a batch of enrolment changes has a fence each.
FENCES_IN_FLIGHT = 64
# How often the read-ahead asks again for what came, while a part's calls are in flight
# and nothing has (a message waits this long at most to be read).
AHEAD_POLL_S = 0.05
# The longest a part gathered while the part before is sent waits to hold a call's
# worth (`_least_at_once`): as long as a fetch lingers to fill a batch, so an exit
# waits no longer than it did for a fetch.
GATHER_MAX_S = 0.2


@dataclass(eq=False)  # each piece of work is itself: compared and hashed by identity
class Work:
    msg: Msg
    delivery: bus_pb2.Delivery
    aspect: str
    attempts: int = 0
    error: str = ""
    provider_id: str = ""
    failed: bool = False
    list_id: str = ""  # a list change's list, once known
    enrolment: EnrolmentChange | None = None  # an enrolment change, as read on arrival
    # An enrolment's end with nothing to stop at the provider (its beginning, in this
    # batch, was never sent): delivered without a call.
    unsent: bool = False
    # The batch read found no fence of its aspect and person (a new enrolment's
    # beginning, say): advancing creates it in one request.
    unfenced: bool = False
    # One beginning of this KIND_ENROLMENTS_BEGUN delivery (`delivery` is then the
    # beginning's own: its person, the message's id and sequence).
    batch: bus_pb2.Delivery | None = None


class LeaseLost(Exception):
    """Another replica owns this ordered work now: stop before the next call."""


class OrderedWorker(abc.ABC, Generic[PlanT]):
    """Handles a fetched batch: reads it (`_read`), and in parts of at most
    `_most_at_once` pieces, one after another, drops what is superseded, applies the rest
    segment by segment (`_segments`; `_plan` ahead, then `_apply`), moves the fences,
    reports and acks. Each provider call is retried in place, and goes only while the
    lease is held."""

    # Whether `_plan` does work enough to go to a thread (it must then touch no
    # state shared with the event loop).
    PLANS_IN_THREAD = False

    def __init__(
        self,
        provider: Provider,
        reporter: Reporter,
        gate: ProviderGate,
        lease: Lease,
        erasures: ErasureMarks,
        *,
        connection_ended: Callable[[], asyncio.Event],
        max_attempts: int,
        backoff_base_s: float,
        keepalive_s: Interval,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._provider = provider
        self._reporter = reporter
        self._gate = gate
        self._lease = lease
        self._erasures = erasures
        self._connection_ended = connection_ended
        self._max_attempts = max_attempts
        self._base_s = backoff_base_s
        self._keepalive_s = keepalive_s
        self._sleep = sleep

    @abc.abstractmethod
    def _operations(self) -> Iterable[str]:
        """Every operation this worker may call."""

    @abc.abstractmethod
    def _read(self, msg: Msg) -> list[Work]:
        """The message as work of this worker (failed at once when it cannot be):
        one piece, or one per beginning of a KIND_ENROLMENTS_BEGUN."""

    @abc.abstractmethod
    def _fences_of(self, aspect: str) -> Fences:
        """The fences of an aspect."""

    @abc.abstractmethod
    def _plan(self, segment: list[Work]) -> PlanT:
        """What applying a segment needs worked out first (its calls planned, say):
        done as its part is checked, ahead, while the part before is sent."""

    @abc.abstractmethod
    async def _apply(self, segment: list[Work], held: Holding, plan: PlanT) -> None:
        """Send a segment's live work, as `_plan` planned it (failing what cannot be sent)."""

    def _segments(self, live: list[Work]) -> list[list[Work]]:
        """The batch's live work in the parts applied one after another."""
        return [live] if live else []

    def holds_lease(self) -> bool:
        """Whether this replica may fetch and send this work now."""
        return self._lease.held()

    def pause_left(self) -> float:
        """Seconds until any endpoint this worker calls takes calls again (0: one
        does now). Fetching is held off only while every one is paused: one 429,
        say on erasures, must not stop unsubscribes; a fetched change for a paused
        endpoint waits at the gate for its own call alone."""
        return min((self._gate.pause_left(op) for op in self._operations()), default=0.0)

    def _least_at_once(self) -> int:
        """The pieces a part waited for holds before it goes (while the part before
        is sent): with calls scarce, no call is spent on a few while more are coming."""
        return 1

    def _most_at_once(self) -> int | None:
        """The most pieces of work handled together (a fetched batch is handled in
        parts of at most this many, each settled before the next); None: all."""
        return None

    async def handle(self, messages: list[Msg], more: MoreMessages | None = None) -> None:
        """The batch, in parts; with `more` (consume(continuing=)), also what came
        meanwhile, as its next parts, until nothing more has come."""
        ended = self._connection_ended()  # of the connection these came on
        async with holding(
            messages, every_s=self._keepalive_s, sleep=self._sleep, ended=ended
        ) as held:
            try:
                await self._handle_parts(messages, held, more)
            except* (LeaseLost, ConnectionEnded) as lost:
                reason = "lease lost" if lost.subgroup(LeaseLost) else "NATS connection ended"
                count = await held.hand_back()
                log.warning("%s mid-batch: %d messages handed back", reason, count)

    async def _handle_parts(
        self, messages: list[Msg], held: Holding, more: MoreMessages | None = None
    ) -> None:
        """The parts in order. The next part is read, checked against the fences
        and planned (`_plan`) while this part's calls are answered, also from
        what came meanwhile (`more`), and when nothing has, from what comes
        before those calls are done (so the next part's calls can follow them
        without a fetch, read and check between); then:
        - when the two share no person, its calls begin at once, and this part
          settles (fences, results, acks) beside them once its own calls are
          done: at a part's end the provider's budget is not left unused while
          its last calls are answered and settled. At most two parts have calls
          in flight: the part before this one settles before the next begins
          (and the next is checked again if it shares a person with it: it was
          read while those fences moved). Once a part is seen to have failed, no
          part after it begins (one begun already finishes).
        - when they share a person, this part settles first and the next is
          checked again: this part's fences (an erasure's: the person's profile
          and consent) may supersede some of it, and a person's changes go in
          order. (Erasure marks come by a watch, as ever: a moment late,
          whichever part reads them.)
        Nothing is abandoned: on a failure the calls in flight finish (or fail)
        first, and nothing of the failed part is settled (the batch goes back)."""
        taken = _held_too(more, held)
        in_flight = _InFlight()
        parts = self._parts(messages, taken, _while_in_flight(taken, in_flight))
        first: list[Work] = await anext(parts, [])
        ready = await self._checked(first)
        # The part before, settling beside this one's calls: its settle, its calls
        # (stopped with it on a shutdown), and whose fences it moves.
        settling: list[asyncio.Task[None]] = []
        settling_people: set[str] = set()
        while ready is not None:
            applying = asyncio.create_task(self._apply_part(ready, held), name="apply-part")
            in_flight.task = applying
            reading = asyncio.create_task(self._read_ahead(parts), name="read-ahead")
            before, before_people = settling, settling_people
            try:
                await _all_done(reading, *before)
                for task in before:
                    task.result()  # the part before failed: no later part begins
                following, next_ready = (
                    reading.result() if reading.exception() is None else ([], None)
                )
                people, live_people = _people(following), _people(ready.live)
                apart = next_ready is not None and not live_people & people
                if apart and before_people & people:  # read while the part before settled
                    next_ready = await self._checked(following)
                if apart and _ok(applying):
                    settle = self._settle(applying, ready, held)
                    settling = [asyncio.create_task(settle, name="settle-part"), applying]
                    settling_people = live_people
                else:
                    settling, settling_people = [], set()
                    await self._settle(applying, ready, held)
                    reading.result()  # a failed read-ahead fails the batch, this part settled
                    if following:
                        next_ready = await self._checked(following)
            except asyncio.CancelledError:  # a shutdown: all stop where they are
                await _stopped(applying, reading, *before)
                raise
            except Exception:  # calls in flight finish (or fail) first
                await _finished(applying, reading, *before)
                raise
            ready = next_ready

    async def _settle(
        self, applying: asyncio.Task[None], part: _Part[PlanT], held: Holding
    ) -> None:
        """The part's fences, results and acks, once its calls are done; cancelled
        (a shutdown), its calls stop too."""
        try:
            await _all_done(applying)
        except asyncio.CancelledError:
            await _stopped(applying)
            raise
        if (failure := applying.exception()) is not None:
            raise failure  # nothing of this part settled: the batch goes back
        await self._finish(part.settled, part.superseded, held)

    async def _read_ahead(
        self, parts: AsyncIterator[list[Work]]
    ) -> tuple[list[Work], _Part[PlanT] | None]:
        """The next part, as read and checked against the fences now."""
        following: list[Work] = await anext(parts, [])
        return following, (await self._checked(following) if following else None)

    def _parts(
        self,
        messages: list[Msg],
        more: MoreMessages | None = None,
        awaited: Awaited[Msg] | None = None,
    ) -> AsyncIterator[list[Work]]:
        """The messages' work (and `more`'s, `awaited`'s) in parts of at most
        `_most_at_once` pieces, gathered up to `_least_at_once` (for GATHER_MAX_S at
        most) once waited for (`parts_of`)."""
        return parts_of(
            messages,
            self._read,
            self._most_at_once(),
            more,
            awaited,
            self._least_at_once(),
            GATHER_MAX_S,
        )

    async def _checked(self, work: list[Work]) -> _Part[PlanT] | None:
        """The part with what is superseded set aside (None: an empty part)."""
        if not work:
            return None
        # Failed already (unreadable): reported with the rest, never sent.
        unreadable = [w for w in work if w.failed]
        readable = [w for w in work if not w.failed]
        superseded = await self._drop_superseded(readable)
        gone = set(superseded)
        live = [w for w in readable if w not in gone]
        plans = [(segment, await self._planned(segment)) for segment in self._segments(live)]
        return _Part(live, unreadable, superseded, plans)

    async def _planned(self, segment: list[Work]) -> PlanT:
        """`_plan`, in a thread for a worker that plans (PLANS_IN_THREAD): a part's
        plan may take a tenth of a second of CPU (8,000 beginnings' events
        encoded), and the calls of the part before, in flight meanwhile, must not
        wait that long for the event loop."""
        if self.PLANS_IN_THREAD:
            return await asyncio.to_thread(self._plan, segment)
        return self._plan(segment)

    async def _apply_part(self, part: _Part[PlanT], held: Holding) -> None:
        for segment, plan in part.plans:
            await self._apply(segment, held, plan)

    async def _drop_superseded(self, work: list[Work]) -> list[Work]:
        """Older changes of the same person and aspect, in this batch or already applied."""
        newest: dict[tuple[str, str], Work] = {}
        for w in work:
            if w.aspect != ERASE:
                key = (w.delivery.contact_key, w.aspect)
                if key not in newest or newest[key].delivery.sequence < w.delivery.sequence:
                    newest[key] = w
        older: defaultdict[tuple[str, str], list[Work]] = defaultdict(list)
        for w in work:
            if w.aspect != ERASE and newest[(w.delivery.contact_key, w.aspect)] is not w:
                older[(w.delivery.contact_key, w.aspect)].append(w)
        superseded = [w for ws in older.values() for w in ws]
        checked = [*newest.values(), *(w for w in work if w.aspect == ERASE)]
        for w, applied in zip(checked, await self._applied(checked), strict=True):
            w.unfenced = applied == 0 and w.aspect != ERASE
            if applied >= w.delivery.sequence or self._erased_since(w):
                superseded.append(w)
            elif is_flow(w.aspect):
                w.unsent = _never_begun(w, older[(w.delivery.contact_key, w.aspect)], applied)
        return superseded

    async def _applied(self, work: list[Work]) -> list[int]:
        """Each change's fence (an erasure's: the profile's; a beginning's: its
        enrolment's, or its message's when that is further), read in bulk per
        fences bucket."""
        # An erasure counts as applied once the profile fence reached it: a
        # re-driven old erasure must not wipe a person who came back since.
        pairs = [(PROFILE if w.aspect == ERASE else w.aspect, w.delivery.contact_key) for w in work]
        batches = [_begun_fence(w.batch) if w.batch is not None else None for w in work]
        by_bucket: defaultdict[Fences, list[tuple[str, str]]] = defaultdict(list)
        for pair in [*pairs, *(b for b in batches if b is not None)]:
            by_bucket[self._fences_of(pair[0])].append(pair)
        found: dict[tuple[str, str], int] = {}
        for fences, wanted in by_bucket.items():
            found |= await fences.applied_many(wanted)
        return [
            max(found[pair], found[batch] if batch is not None else 0)
            for pair, batch in zip(pairs, batches, strict=True)
        ]

    def _erased_since(self, w: Work) -> bool:
        """An enrolment or device token change made before its person's erasure
        (redelivered after it): sending it would make the person again at the provider
        (an event, an enrolment, a profile with the token)."""
        created = epoch_seconds(w.delivery.create_time)
        recreates = is_flow(w.aspect) or is_push(w.aspect)
        return recreates and self._erasures.erased_since(w.delivery.contact_key, created)

    async def _run(self, call: BulkCall[Work], held: Holding) -> None:
        """One call with in-place retries; a refused call is narrowed down to the
        items the provider refused (`CallRunner`)."""
        runner = CallRunner(
            gate=self._gate,
            guard=lambda: self._ensure_ours(held),
            refused=fail,
            gave_up=fail,
            max_attempts=self._max_attempts,
            backoff_base_s=self._base_s,
            sleep=self._sleep,
            attempted=_attempted,
        )
        await runner.run(call)

    def _ensure_ours(self, held: Holding) -> None:
        """Lease.held() goes by time alone: a lease on a connection that closed
        meanwhile still looks held, so the connection is checked as well."""
        held.ensure_connected()
        if not self._lease.held():
            raise LeaseLost()

    async def _finish(self, live: list[Work], superseded: list[Work], held: Holding) -> None:
        await self._advance_fences(live)
        await self._reporter.report(_outcomes(live, superseded))
        # A message of many beginnings is many pieces of work: settled once.
        messages = list({id(w.msg): w.msg for w in [*live, *superseded]}.values())
        held.settled(messages)
        for msg in messages:
            await msg.ack()

    async def _advance_fences(self, live: list[Work]) -> None:
        """Each fence to the newest sequence applied to it, fences side by side:
        a KIND_ENROLMENTS_BEGUN's own when it was applied in full, else the
        fences of its beginnings that were."""
        partly_failed = {w.batch.id for w in live if w.batch is not None and w.failed}
        newest: dict[tuple[str, str], int] = {}
        unfenced: set[tuple[str, str]] = set()
        for w in live:
            if w.failed:
                continue
            if w.batch is not None and w.batch.id not in partly_failed:
                # Created in one request; one written before falls back to compare-and-set.
                key = _begun_fence(w.batch)
                newest[key] = max(newest.get(key, 0), w.batch.sequence)
                unfenced.add(key)
                continue
            for aspect in (PROFILE, CONSENT) if w.aspect == ERASE else (w.aspect,):
                key = (aspect, w.delivery.contact_key)
                newest[key] = max(newest.get(key, 0), w.delivery.sequence)
                if w.unfenced:
                    unfenced.add(key)
        limit = asyncio.Semaphore(FENCES_IN_FLIGHT)

        async def advance(aspect: str, contact_key: str, sequence: int) -> None:
            absent = (aspect, contact_key) in unfenced
            async with limit:
                await self._fences_of(aspect).advance(aspect, contact_key, sequence, absent=absent)

        await asyncio.gather(*(advance(*key, sequence) for key, sequence in newest.items()))


async def parts_of(
    messages: Iterable[M],
    read: Callable[[M], list[W]],
    most: int | None,
    more: Callable[[], Awaitable[list[M]]] | None = None,
    awaited: Awaited[M] | None = None,
    least: int = 1,
    gather_s: float = 0.0,
) -> AsyncIterator[list[W]]:
    """Each message's work (`read`, a message at a time as the parts are wanted, the
    calls in flight answered between) in order, in parts of at most `most` pieces; a
    message's pieces stay together, however many. Once `messages` are read, those
    `more()` gives (what came meanwhile), until it gives none: the first part goes
    then as it is. After it, `awaited(until)` may wait for more to come (while the
    part before is sent, say), and a part so gathered goes once it holds `least`
    pieces (a call's worth), once `gather_s` passed since its first piece was read,
    or once `awaited` gives none; until nothing is in hand and nothing more comes."""
    if most is not None:
        least = min(least, most)
    part: list[W] = []
    batch: Iterable[M] = messages
    first = True  # the first part goes as it is: the batch handed over, and what came
    since: float | None = None  # when the part being gathered got its first piece
    while True:
        for msg in batch:
            pieces = read(msg)
            if part and most is not None and len(part) + len(pieces) > most:
                yield part
                part, first, since = [], False, None
            if since is None and not first:
                since = time.monotonic()
            part.extend(pieces)
            if most is not None and len(part) >= most:  # now: the next message need not be read
                yield part
                part, first, since = [], False, None
            await asyncio.sleep(0)
        batch = await more() if more is not None else []
        if batch:
            continue
        due = since is not None and time.monotonic() - since >= gather_s
        if part and (first or len(part) >= least or due):  # none came meanwhile: it goes now
            yield part
            part, since = [], None
        first = False
        until = since + gather_s if since is not None else None
        batch = await awaited(until) if awaited is not None else []
        if batch:
            continue
        if not part:
            return
        yield part  # short of `least`: its time is up, or the part before was sent
        part, since = [], None


def _ok(task: asyncio.Task[Any]) -> bool:
    """Not (yet) failed."""
    return not task.done() or (not task.cancelled() and task.exception() is None)


async def _all_done(*tasks: asyncio.Task[Any]) -> None:
    """Until every task is done (a failure stays in its task), each running on
    should the wait be cancelled."""
    await asyncio.wait(tasks)


async def _finished(*tasks: asyncio.Task[Any]) -> None:
    """Until every task is done, no failure unretrieved (the caller raises the one
    that counts); cancelled meanwhile (a shutdown), they stop (`_stopped`)."""
    try:
        await asyncio.gather(*tasks, return_exceptions=True)
    except asyncio.CancelledError:
        await _stopped(*tasks)
        raise


async def _stopped(*tasks: asyncio.Task[Any]) -> None:
    """Each task cancelled unless done, and awaited: none runs on unowned, and no
    failure goes unretrieved (the caller reads the one that counts)."""
    for task in tasks:
        if not task.done():
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _held_too(more: MoreMessages | None, held: Holding) -> MoreMessages | None:
    """`more`, whose messages are held (kept alive, handed back) with the batch."""
    if more is None:
        return None

    async def taken() -> list[Msg]:
        messages = await more()
        held.add(messages)
        return messages

    return taken


class _InFlight:
    """The part whose calls are in flight now (its `_apply_part` task), if any."""

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None


def _while_in_flight(more: MoreMessages | None, in_flight: _InFlight) -> Awaited[Msg] | None:
    """`more`, asked again every AHEAD_POLL_S while nothing has come and a part's
    calls are in flight, until `until` (monotonic seconds) if given; none once the
    calls are done (or failed), or `until` passed."""
    if more is None:
        return None

    async def awaited(until: float | None) -> list[Msg]:
        while True:
            task = in_flight.task
            if task is not None and not _ok(task):
                return []  # no part begins after it: what came would only go back
            messages = await more()
            if messages or task is None or task.done():
                return messages
            left = AHEAD_POLL_S if until is None else min(AHEAD_POLL_S, until - time.monotonic())
            if left <= 0:
                return []
            await asyncio.wait({task}, timeout=left)

    return awaited


@dataclass
class _Part(Generic[PlanT]):
    """A part as checked against the fences: what goes to the provider, what failed
    on arrival (reported, never sent) and what is superseded; and the live work's
    segments, each with its plan (`OrderedWorker._plan`)."""

    live: list[Work]
    unreadable: list[Work]
    superseded: list[Work]
    plans: list[tuple[list[Work], PlanT]]

    @property
    def settled(self) -> list[Work]:
        """What the part's finish reports as applied or failed."""
        return [*self.live, *self.unreadable]


def _people(work: list[Work]) -> set[str]:
    return {w.delivery.contact_key for w in work}


def _begun_fence(batch: bus_pb2.Delivery) -> tuple[str, str]:
    """The fence of a KIND_ENROLMENTS_BEGUN as a whole, in its beginnings' bucket."""
    return f"{FLOW}.{BEGUN}", batch.id


def _outcomes(live: list[Work], superseded: list[Work]) -> list[Outcome]:
    """One outcome per delivery: a piece of work's own, and one for each
    KIND_ENROLMENTS_BEGUN made of its beginnings' (`_begun_outcome`)."""
    outcomes = [
        Outcome(
            w.delivery,
            bus_pb2.OUTCOME_FAILED if w.failed else bus_pb2.OUTCOME_DELIVERED,
            max(w.attempts, 1),
            provider_id=w.provider_id,
            error=w.error,
        )
        for w in live
        if w.batch is None
    ] + [Outcome(w.delivery, bus_pb2.OUTCOME_SUPERSEDED, 0) for w in superseded if w.batch is None]
    batches: dict[str, tuple[bus_pb2.Delivery, list[Work], list[Work]]] = {}
    for w, sent in [*((w, True) for w in live), *((w, False) for w in superseded)]:
        if w.batch is not None:
            batch = batches.setdefault(w.batch.id, (w.batch, [], []))
            (batch[1] if sent else batch[2]).append(w)
    return outcomes + [_begun_outcome(*batch) for batch in batches.values()]


def _begun_outcome(batch: bus_pb2.Delivery, live: list[Work], superseded: list[Work]) -> Outcome:
    """A KIND_ENROLMENTS_BEGUN's result: FAILED when any beginning failed (its
    error names them), DELIVERED when any was sent, else SUPERSEDED."""
    if not live:
        return Outcome(batch, bus_pb2.OUTCOME_SUPERSEDED, 0)
    attempts = max(1, *(w.attempts for w in live))
    failed = [w for w in live if w.failed]
    if not failed:
        return Outcome(batch, bus_pb2.OUTCOME_DELIVERED, attempts)
    named = "; ".join(_failure(w) for w in failed[:NAMED_FAILURES])
    more = len(failed) - NAMED_FAILURES
    error = f"{len(failed)} of {len(live) + len(superseded)} beginnings failed: {named}"
    if more > 0:
        error += f"; and {more} more"
    return Outcome(batch, bus_pb2.OUTCOME_FAILED, attempts, error=error)


def _failure(w: Work) -> str:
    """A failed beginning's error, naming its enrolment (an unreadable one's names it)."""
    return f"enrolment {w.enrolment.enrolment_id}: {w.error}" if w.enrolment else w.error


def is_flow(aspect: str) -> bool:
    return aspect.startswith(FLOW + ".")


def is_push(aspect: str) -> bool:
    return aspect.startswith(PUSH + ".")


def unreadable(delivery: bus_pb2.Delivery, here: Collection[int], work: str) -> str:
    """Why a delivery cannot be sent by a worker taking the kinds `here` (`work` names them)."""
    if delivery.type == bus_pb2.KIND_UNSPECIFIED:
        old = f" (an old release's {delivery.kind!r})" if delivery.kind else ""
        return f"unreadable delivery: no kind this release knows{old}"
    if delivery.type not in here:
        what = kinds.label(delivery.type)
        return f"unreadable delivery: {what} (type {delivery.type}) is not {work}"
    return f"unreadable delivery: a {kinds.name(delivery.type)} without its payload"


def _never_begun(end: Work, older: list[Work], applied: int) -> bool:
    """Whether `end` ends an enrolment that never reached the provider: its beginning is in
    this batch (superseded by it), the fence shows no change of the enrolment applied up
    to it, and it was never sent before (its first delivery, not a re-drive: a replica
    that sent it may have died before the fence moved)."""
    assert end.enrolment is not None
    starts = [w for w in older if w.enrolment is not None and w.enrolment.active]
    if end.enrolment.active or not starts:
        return False
    first = min(w.delivery.sequence for w in starts)
    return applied < first and all(_first_delivery(w) for w in starts)


def _first_delivery(w: Work) -> bool:
    """Delivered for the first time, and published for the first time (a manual re-drive
    has a Nats-Msg-Id of its own, see marketing_runtime.envelope.message_id)."""
    try:
        delivered = w.msg.metadata.num_delivered
    except NotJSMessageError:  # no delivery count: it may have been sent
        return False
    msg_id = (w.msg.headers or {}).get(MSG_ID_HEADER)
    return delivered == 1 and msg_id in (None, w.delivery.id)


def _attempted(owners: Sequence[Work], attempt: int) -> None:
    for w in owners:
        w.attempts = max(w.attempts, attempt)


def fail(owners: Sequence[Work], error: str) -> None:
    for w in owners:
        w.failed, w.error = True, error
