"""Delivers profile, consent, provider-list and flow-enrolment changes in order.

Ordering, per person, across retries and replicas:
1. One replica at a time processes ordered work: it holds a lease in NATS KV
   (others stand by and take over when it lapses).
2. It handles a fetched batch in stream order and retries failures in place
   (holding the messages with in_progress) rather than nak'ing them, so no
   later change of the same person can overtake a failed one.
3. Every consent payload carries the person's whole consent state, so within
   a batch only the newest change per person and aspect is sent; older ones
   are reported SUPERSEDED.
4. A fence per person and aspect (in NATS KV) records the newest sequence
   applied; a redelivered older change (after a failover) is never sent.
   An enrolment's fences are kept in a bucket of their own, for a while only
   (topology.ENROLMENT_FENCE_MAX_AGE_S says why that is long enough).

Enrolment changes of all people in a batch are planned together by the provider
(`plan_enrolments`: Klaviyo sends up to 1,000 in one bulk call); a call waits
only for the earlier calls of the people it carries.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.clock import Sleep
from marketing_runtime.envelope import MSG_ID_HEADER, parse_delivery
from marketing_runtime.timestamps import epoch_seconds
from nats.aio.msg import Msg
from nats.errors import NotJSMessageError

from dispatcher.delivery import translate
from dispatcher.delivery.calls import CallRunner, split_by_limits
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import ConnectionEnded, Holding, Interval, holding
from dispatcher.delivery.outcomes import Outcome, Reporter
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.ordering.fences import CONSENT, PROFILE, Fences
from dispatcher.ordering.lease import Lease
from dispatcher.providers.base import (
    FIND_LIST,
    REQUEST_ERASURE,
    UPSERT_PROFILE,
    BulkCall,
    EnrolmentChange,
    Provider,
)

log = logging.getLogger(__name__)
ERASE = "erase"
# A person's place in one segment's provider list: fenced per list, as
# `LIST.<segment id>` (a newer join or leave of one list says nothing of another).
LIST = "list"
# A person's enrolment in one of our flows: fenced per enrolment, as
# `FLOW.<enrolment id>` (a newer change of one enrolment supersedes only that
# enrolment's older ones: two carts of one person in one flow are two enrolments).
FLOW = "flow"
UNREADABLE = "unreadable"  # failed as it arrived: no kind or no payload of its kind
ASPECT_OF_KIND = {
    bus_pb2.KIND_CONTACT_UPSERTED: PROFILE,
    bus_pb2.KIND_CONSENT_CHANGED: CONSENT,
    bus_pb2.KIND_NEWSLETTER_SUBSCRIBED: CONSENT,
    bus_pb2.KIND_CONTACT_UNSUBSCRIBED: CONSENT,
    bus_pb2.KIND_CONTACT_ERASED: ERASE,
    bus_pb2.KIND_LIST_MEMBERSHIP_CHANGED: LIST,
    bus_pb2.KIND_ENROLMENT_CHANGED: FLOW,
}
PROFILE_CONCURRENCY = 8
# Fence reads and writes in flight at once: a batch of enrolment changes has a fence each.
FENCES_IN_FLIGHT = 64


@dataclass
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


class LeaseLost(Exception):
    """Another replica owns ordered work now: stop before the next call."""


class ContactsWorker:
    def __init__(
        self,
        provider: Provider,
        reporter: Reporter,
        gate: ProviderGate,
        fences: Fences,
        lease: Lease,
        erasures: ErasureMarks,
        *,
        enrolment_fences: Fences,
        connection_ended: Callable[[], asyncio.Event],
        max_attempts: int,
        backoff_base_s: float,
        keepalive_s: Interval,
        newsletter_list_id: str | None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._provider = provider
        self._connection_ended = connection_ended
        self._keepalive_s = keepalive_s
        self._reporter = reporter
        self._gate = gate
        self._fences = fences
        self._enrolment_fences = enrolment_fences
        self._lease = lease
        self._erasures = erasures
        self._max_attempts = max_attempts
        self._base_s = backoff_base_s
        self._list_id = newsletter_list_id or None
        self._sleep = sleep
        # Segment lists found (or created) by name, by link: asked once per process.
        self._found_lists: dict[str, str] = {}

    def pause_left(self) -> float:
        """Seconds until any endpoint this worker calls takes calls again (0: one
        does now). Fetching is held off only while every one is paused: one 429,
        say on erasures, must not stop unsubscribes; a fetched change for a paused
        endpoint waits at the gate for its own call alone."""
        limits = self._provider.limits
        operations = (
            UPSERT_PROFILE,
            REQUEST_ERASURE,
            FIND_LIST,
            *limits.consent,
            *limits.lists,
            *limits.enrolments,
        )
        return min(self._gate.pause_left(operation) for operation in operations)

    async def handle(self, messages: list[Msg]) -> None:
        work = [_work(msg) for msg in messages]
        ended = self._connection_ended()  # of the connection these came on
        async with holding(
            messages, every_s=self._keepalive_s, sleep=self._sleep, ended=ended
        ) as held:
            try:
                # Failed already (unreadable): reported with the rest, never sent.
                unreadable = [w for w in work if w.failed]
                readable = [w for w in work if not w.failed]
                superseded = await self._drop_superseded(readable)
                live = [w for w in readable if w not in superseded]
                for segment in _segments(live):
                    await self._apply(segment, held)
                await self._finish([*live, *unreadable], superseded, held)
            except* (LeaseLost, ConnectionEnded) as lost:
                reason = "lease lost" if lost.subgroup(LeaseLost) else "NATS connection ended"
                count = await held.hand_back()
                log.warning("%s mid-batch: %d messages handed back", reason, count)

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
            if applied >= w.delivery.sequence or self._erased_since(w):
                superseded.append(w)
            elif _is_flow(w.aspect):
                w.unsent = _never_begun(w, older[(w.delivery.contact_key, w.aspect)], applied)
        return superseded

    async def _applied(self, work: list[Work]) -> list[int]:
        """Each change's fence (an erasure's: the profile's), read side by side."""
        limit = asyncio.Semaphore(FENCES_IN_FLIGHT)

        async def applied(w: Work) -> int:
            # An erasure counts as applied once the profile fence reached it: a
            # re-driven old erasure must not wipe a person who came back since.
            aspect = PROFILE if w.aspect == ERASE else w.aspect
            async with limit:
                return await self._fences_of(aspect).applied(aspect, w.delivery.contact_key)

        return list(await asyncio.gather(*(applied(w) for w in work)))

    def _fences_of(self, aspect: str) -> Fences:
        return self._enrolment_fences if _is_flow(aspect) else self._fences

    def _erased_since(self, w: Work) -> bool:
        """An enrolment change made before its person's erasure (redelivered after it):
        sending it would make the person again at the provider (an event, an enrolment)."""
        created = epoch_seconds(w.delivery.create_time)
        return _is_flow(w.aspect) and self._erasures.erased_since(w.delivery.contact_key, created)

    async def _apply(self, segment: list[Work], held: Holding) -> None:
        profiles = [w for w in segment if w.aspect == PROFILE]
        consents = [w for w in segment if w.aspect == CONSENT]
        list_changes = [w for w in segment if _is_list(w.aspect)]
        enrolments = [w for w in segment if _is_flow(w.aspect)]
        erasures = [w for w in segment if w.aspect == ERASE]
        limit = asyncio.Semaphore(PROFILE_CONCURRENCY)

        async def upsert(w: Work) -> None:
            async with limit:
                await self._run(BulkCall(UPSERT_PROFILE, [w], self._upsert), held)

        async with asyncio.TaskGroup() as group:  # a LeaseLost cancels the others
            for w in profiles:
                group.create_task(upsert(w))
        for call in self._consent_calls(consents):
            await self._run(call, held)
        # After consent: a withdrawal reaches the provider before the leave it
        # caused, a grant before the join.
        await self._find_lists(list_changes, held)
        for call in self._list_calls([w for w in list_changes if not w.failed]):
            await self._run(call, held)
        # After the profile (a flow's messages read it) and consent (an exit an
        # unsubscribe caused follows the withdrawal).
        await self._change_enrolments(enrolments, held)
        for w in erasures:
            await self._run(BulkCall(REQUEST_ERASURE, [w], self._erase), held)

    async def _upsert(self, owners: Sequence[Work]) -> None:
        (w,) = owners
        w.provider_id = await self._provider.upsert_profile(translate.profile(w.delivery))

    async def _erase(self, owners: Sequence[Work]) -> None:
        delivery = owners[0].delivery
        await self._provider.request_erasure(translate.erasure_email(delivery))
        await self._erasures.mark(delivery.contact_key, epoch_seconds(delivery.create_time))

    def _consent_calls(self, consents: list[Work]) -> list[BulkCall[Work]]:
        """The provider's plan, in its order (a person's calls run in that order), each
        call split by its operation's limits."""
        states = [(w, translate.consent_state(w.delivery)) for w in consents]
        planned = self._provider.plan_consent(states, self._list_id)
        return split_by_limits(planned, self._provider.limits.consent)

    async def _find_lists(self, changes: list[Work], held: Holding) -> None:
        """Each change's list id: its payload's, else the list found (or made) by
        its name once per segment, and reported as the delivery's provider id
        so the service learns it."""
        unknown: dict[str, list[Work]] = {}
        for w in changes:
            payload = w.delivery.list_membership_changed
            w.list_id = payload.list_id or self._found_lists.get(_link(payload), "")
            if not w.list_id:
                unknown.setdefault(_link(payload), []).append(w)
        for owners in unknown.values():
            await self._run(BulkCall(FIND_LIST, owners, self._find_list), held)
        for w in changes:
            if not w.delivery.list_membership_changed.list_id:
                w.provider_id = w.list_id
            if self._list_id is not None and w.list_id == self._list_id:
                _fail([w], "the newsletter list is kept by consent changes, not a segment")

    async def _find_list(self, owners: Sequence[Work]) -> None:
        payload = owners[0].delivery.list_membership_changed
        found = await self._provider.find_list(payload.list_name)
        self._found_lists[_link(payload)] = found
        for w in owners:
            w.list_id = found

    def _list_calls(self, changes: list[Work]) -> list[BulkCall[Work]]:
        planned = self._provider.plan_lists(
            [(w, translate.list_change(w.delivery, w.list_id)) for w in changes]
        )
        return split_by_limits(planned, self._provider.limits.lists)

    async def _change_enrolments(self, changes: list[Work], held: Holding) -> None:
        """Everyone's changes in one plan of the provider's (one call may carry many
        people's), run in its order per person (their enrolments in one flow share its
        provider state: a Klaviyo property, an ActiveCampaign automation)."""
        pairs = [(w, w.enrolment) for w in changes if w.enrolment is not None and not w.unsent]
        planned = self._provider.plan_enrolments(pairs, _accepted)
        await self._run_per_person(split_by_limits(planned, self._provider.limits.enrolments), held)

    async def _run_per_person(self, calls: list[BulkCall[Work]], held: Holding) -> None:
        """Each call once the calls before it of every person it carries are done; calls
        of other people side by side (a few at once), so nobody waits for another."""
        limit = asyncio.Semaphore(PROFILE_CONCURRENCY)
        last: dict[str, asyncio.Task[None]] = {}

        async def run(call: BulkCall[Work], before: set[asyncio.Task[None]]) -> None:
            if before:
                await asyncio.wait(before)
            async with limit:
                await self._run(call, held)

        async with asyncio.TaskGroup() as group:  # a LeaseLost cancels the others
            for call in calls:
                people = {w.delivery.contact_key for w in call.owners}
                task = group.create_task(run(call, {last[p] for p in people if p in last}))
                last.update(dict.fromkeys(people, task))

    async def _run(self, call: BulkCall[Work], held: Holding) -> None:
        """One call with in-place retries; a refused call is narrowed down to the
        items the provider refused (`CallRunner`)."""
        runner = CallRunner(
            gate=self._gate,
            guard=lambda: self._ensure_ours(held),
            refused=_fail,
            gave_up=_fail,
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
        await self._advance_fences([w for w in live if not w.failed])
        outcomes = [
            Outcome(
                w.delivery,
                bus_pb2.OUTCOME_FAILED if w.failed else bus_pb2.OUTCOME_DELIVERED,
                max(w.attempts, 1),
                provider_id=w.provider_id,
                error=w.error,
            )
            for w in live
        ] + [Outcome(w.delivery, bus_pb2.OUTCOME_SUPERSEDED, 0) for w in superseded]
        await self._reporter.report(outcomes)
        messages = [w.msg for w in [*live, *superseded]]
        held.settled(messages)
        for msg in messages:
            await msg.ack()

    async def _advance_fences(self, applied: list[Work]) -> None:
        """Each fence to the newest sequence applied to it, fences side by side."""
        newest: dict[tuple[str, str], int] = {}
        for w in applied:
            for aspect in (PROFILE, CONSENT) if w.aspect == ERASE else (w.aspect,):
                key = (aspect, w.delivery.contact_key)
                newest[key] = max(newest.get(key, 0), w.delivery.sequence)
        limit = asyncio.Semaphore(FENCES_IN_FLIGHT)

        async def advance(aspect: str, contact_key: str, sequence: int) -> None:
            async with limit:
                await self._fences_of(aspect).advance(aspect, contact_key, sequence)

        await asyncio.gather(*(advance(*key, sequence) for key, sequence in newest.items()))


def _work(msg: Msg) -> Work:
    delivery = parse_delivery(msg.data)
    aspect = ASPECT_OF_KIND.get(delivery.type)
    if aspect is None or delivery.WhichOneof("payload") != kinds.payload_field(delivery.type):
        # Sending cannot make it readable: fail it now, or it would hold up the
        # batch (and the ordered work behind it) for good.
        return Work(msg, delivery, UNREADABLE, failed=True, error=_unreadable(delivery))
    if aspect == LIST:
        segment_id = delivery.list_membership_changed.segment_id
        if not _SEGMENT_ID.fullmatch(segment_id):
            error = f"unreadable delivery: a list change of segment {segment_id!r}"
            return Work(msg, delivery, UNREADABLE, failed=True, error=error)
        aspect = f"{LIST}.{segment_id}"
    if aspect == FLOW:
        return _enrolment_work(msg, delivery)
    return Work(msg, delivery, aspect)


def _enrolment_work(msg: Msg, delivery: bus_pb2.Delivery) -> Work:
    """An enrolment change, read now: one no provider could be sent fails at once."""
    try:
        change = translate.enrolment_change(delivery)
    except ValueError as exc:
        return Work(msg, delivery, UNREADABLE, failed=True, error=f"unreadable delivery: {exc}")
    if not _ENROLMENT_ID.fullmatch(change.enrolment_id):
        error = f"unreadable delivery: an enrolment change of enrolment {change.enrolment_id!r}"
        return Work(msg, delivery, UNREADABLE, failed=True, error=error)
    return Work(msg, delivery, f"{FLOW}.{change.enrolment_id}", enrolment=change)


# What the service's segment ids are: also safe as a fence key's token.
_SEGMENT_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")
# What an enrolment id (a UUID) may be to serve as a fence key's token.
_ENROLMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


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


def _accepted(w: Work, provider_id: str) -> None:
    w.provider_id = provider_id


def _link(change: bus_pb2.ListMembershipChanged) -> str:
    """The link a list change belongs to (a relinked segment's is a new one)."""
    return change.link_id or change.segment_id


def _is_list(aspect: str) -> bool:
    return aspect.startswith(LIST + ".")


def _is_flow(aspect: str) -> bool:
    return aspect.startswith(FLOW + ".")


def _unreadable(delivery: bus_pb2.Delivery) -> str:
    if delivery.type == bus_pb2.KIND_UNSPECIFIED:
        old = f" (an old release's {delivery.kind!r})" if delivery.kind else ""
        return f"unreadable delivery: no kind this release knows{old}"
    if delivery.type not in ASPECT_OF_KIND:
        what = kinds.label(delivery.type)
        return f"unreadable delivery: {what} (type {delivery.type}) is not contact work"
    return f"unreadable delivery: a {kinds.name(delivery.type)} without its payload"


def _segments(work: list[Work]) -> list[list[Work]]:
    """Split at each person's erasures: an erasure waits for what came before it
    of the same person and goes before what came after it (a person may be
    re-created later). Segment n holds each person's work after their n-th
    erasure, up to and including the next one (`_apply` runs erasures last), so
    other people's changes never wait behind an erasure, say one that is paused."""
    erased: dict[str, int] = {}
    segments: defaultdict[int, list[Work]] = defaultdict(list)
    for w in sorted(work, key=lambda w: w.delivery.sequence):
        key = w.delivery.contact_key
        segments[erased.get(key, 0)].append(w)
        if w.aspect == ERASE:
            erased[key] = erased.get(key, 0) + 1
    return [segments[n] for n in sorted(segments)]


def _attempted(owners: Sequence[Work], attempt: int) -> None:
    for w in owners:
        w.attempts = max(w.attempts, attempt)


def _fail(owners: Sequence[Work], error: str) -> None:
    for w in owners:
        w.failed, w.error = True, error
