"""Delivers profile, consent, provider-list, device token and erasure changes in order (the ordering
rules are in ordered.py), holding the contact work's lease.

Flow enrolment changes have a subject and a worker of their own (enrolments.py), so that
a batch of them waiting for a budget it shares with bulk events (Klaviyo's bulk event
jobs) never holds up an unsubscribe. One published on the contacts subject by a release
before that (during an upgrade) is still applied here, as before: after the person's
profile, consent and list changes in its batch, through the same code as there.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.clock import Sleep
from marketing_runtime.envelope import parse_delivery
from marketing_runtime.timestamps import epoch_seconds
from nats.aio.msg import Msg

from dispatcher.delivery import translate
from dispatcher.delivery.calls import split_by_limits
from dispatcher.delivery.enrolment_changes import change_enrolments, enrolment_work
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import Holding, Interval
from dispatcher.delivery.ordered import (
    ERASE,
    FLOW,
    PUSH,
    UNREADABLE,
    OrderedWorker,
    Work,
    fail,
    is_flow,
    is_push,
    unreadable,
)
from dispatcher.delivery.outcomes import Reporter
from dispatcher.metrics import PUSH_NOT_OFFERED
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.ordering.fences import CONSENT, PROFILE, Fences
from dispatcher.ordering.lease import Lease
from dispatcher.providers.base import (
    DELETE_PUSH_TOKEN,
    FIND_LIST,
    REGISTER_PUSH_TOKEN,
    REQUEST_ERASURE,
    UPSERT_PROFILE,
    BulkCall,
    Provider,
)

# A person's place in one segment's provider list: fenced per list, as
# `LIST.<segment id>` (a newer join or leave of one list says nothing of another).
LIST = "list"
ASPECT_OF_KIND = {
    bus_pb2.KIND_CONTACT_UPSERTED: PROFILE,
    bus_pb2.KIND_CONSENT_CHANGED: CONSENT,
    bus_pb2.KIND_NEWSLETTER_SUBSCRIBED: CONSENT,
    bus_pb2.KIND_CONTACT_UNSUBSCRIBED: CONSENT,
    bus_pb2.KIND_CONTACT_ERASED: ERASE,
    bus_pb2.KIND_LIST_MEMBERSHIP_CHANGED: LIST,
    bus_pb2.KIND_ENROLMENT_CHANGED: FLOW,  # from a release before enrolments.py
    bus_pb2.KIND_PUSH_TOKEN_CHANGED: PUSH,
}
PROFILE_CONCURRENCY = 8


class ContactsWorker(OrderedWorker[None]):
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
        super().__init__(
            provider,
            reporter,
            gate,
            lease,
            erasures,
            connection_ended=connection_ended,
            max_attempts=max_attempts,
            backoff_base_s=backoff_base_s,
            keepalive_s=keepalive_s,
            sleep=sleep,
        )
        self._fences = fences
        self._enrolment_fences = enrolment_fences
        self._list_id = newsletter_list_id or None
        # Segment lists found (or created) by name, by link: asked once per process.
        self._found_lists: dict[str, str] = {}

    def _operations(self) -> Iterable[str]:
        limits = self._provider.limits
        return (
            UPSERT_PROFILE,
            REQUEST_ERASURE,
            FIND_LIST,
            *limits.consent,
            *limits.lists,
            *limits.enrolments,  # an older release's enrolment change
            *((REGISTER_PUSH_TOKEN, DELETE_PUSH_TOKEN) if limits.offers_push else ()),
        )

    def _read(self, msg: Msg) -> list[Work]:
        return [_work(msg)]

    def _fences_of(self, aspect: str) -> Fences:
        return self._enrolment_fences if is_flow(aspect) else self._fences

    def _segments(self, live: list[Work]) -> list[list[Work]]:
        return _segments(live)

    def _plan(self, segment: list[Work]) -> None:
        """Nothing ahead: a segment's calls are made as it is applied."""

    async def _apply(self, segment: list[Work], held: Holding, plan: None) -> None:
        profiles = [w for w in segment if w.aspect == PROFILE]
        consents = [w for w in segment if w.aspect == CONSENT]
        list_changes = [w for w in segment if _is_list(w.aspect)]
        enrolments = [w for w in segment if is_flow(w.aspect)]
        devices = [w for w in segment if is_push(w.aspect)]
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
        # After consent: push withdrawn reaches the provider before its devices go.
        for w in devices:
            await self._change_push_token(w, held)
        # After the profile (a flow's messages read it) and consent (an exit an
        # unsubscribe caused follows the withdrawal).
        await change_enrolments(self._provider, enrolments, self._run, held)
        for w in erasures:
            await self._run(BulkCall(REQUEST_ERASURE, [w], self._erase), held)

    async def _upsert(self, owners: Sequence[Work]) -> None:
        (w,) = owners
        w.provider_id = await self._provider.upsert_profile(translate.profile(w.delivery))

    async def _change_push_token(self, w: Work, held: Holding) -> None:
        change = translate.push_token_change(w.delivery)
        if not self._provider.limits.offers_push:  # delivered: there is nothing to tell
            PUSH_NOT_OFFERED.labels(str(change.registered).lower()).inc()
            return

        async def send(owners: Sequence[Work]) -> None:
            await self._provider.change_push_token(change)

        operation = REGISTER_PUSH_TOKEN if change.registered else DELETE_PUSH_TOKEN
        await self._run(BulkCall(operation, [w], send), held)

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
                fail([w], "the newsletter list is kept by consent changes, not a segment")

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


def _work(msg: Msg) -> Work:
    delivery = parse_delivery(msg.data)
    aspect = ASPECT_OF_KIND.get(delivery.type)
    if aspect is None or delivery.WhichOneof("payload") != kinds.payload_field(delivery.type):
        # Sending cannot make it readable: fail it now, or it would hold up the
        # batch (and the ordered work behind it) for good.
        error = unreadable(delivery, ASPECT_OF_KIND, "contact work")
        return Work(msg, delivery, UNREADABLE, failed=True, error=error)
    if aspect == LIST:
        segment_id = delivery.list_membership_changed.segment_id
        if not _SEGMENT_ID.fullmatch(segment_id):
            error = f"unreadable delivery: a list change of segment {segment_id!r}"
            return Work(msg, delivery, UNREADABLE, failed=True, error=error)
        aspect = f"{LIST}.{segment_id}"
    if aspect == FLOW:
        return enrolment_work(msg, delivery)
    if aspect == PUSH:
        token = delivery.push_token_changed.token
        aspect = f"{PUSH}.{hashlib.sha256(token.encode()).hexdigest()[:32]}"
    return Work(msg, delivery, aspect)


# What the service's segment ids are: also safe as a fence key's token.
_SEGMENT_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")


def _link(change: bus_pb2.ListMembershipChanged) -> str:
    """The link a list change belongs to (a relinked segment's is a new one)."""
    return change.link_id or change.segment_id


def _is_list(aspect: str) -> bool:
    return aspect.startswith(LIST + ".")


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
