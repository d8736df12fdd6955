"""Flow enrolment changes (KIND_ENROLMENT_CHANGED) as ordered work, for the enrolments
worker and for the contacts worker (which still applies one that a release before the
enrolments subject published on the contacts subject): each read as it arrives, and a
batch's changes of all people sent through one plan of the provider's
(`plan_enrolments`: Klaviyo sends up to 1,000 in one bulk call); a call waits only for the
earlier calls of the people it carries."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from google.protobuf import timestamp_pb2
from marketing.bus.v1 import bus_pb2
from marketing_runtime.person_keys import person_key
from marketing_runtime.timestamps import to_datetime
from nats.aio.msg import Msg

from dispatcher.delivery import translate
from dispatcher.delivery.calls import split_by_limits
from dispatcher.delivery.keepalive import Holding
from dispatcher.delivery.ordered import FLOW, UNREADABLE, Work
from dispatcher.providers.base import BulkCall, Provider

RunCall = Callable[[BulkCall[Work], Holding], Awaitable[None]]
# Calls of different people in flight at once, per part (two parts may be: sixteen).
CALLS_IN_FLIGHT = 8
# What an enrolment id (a UUID) may be to serve as a fence key's token.
_ENROLMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def enrolment_work(msg: Msg, delivery: bus_pb2.Delivery) -> Work:
    """An enrolment change, read now: one no provider could be sent fails at once."""
    try:
        change = translate.enrolment_change(delivery)
    except ValueError as exc:
        return Work(msg, delivery, UNREADABLE, failed=True, error=f"unreadable delivery: {exc}")
    return _fenced(Work(msg, delivery, UNREADABLE, enrolment=change))


def begun_work(msg: Msg, delivery: bus_pb2.Delivery) -> list[Work]:
    """A KIND_ENROLMENTS_BEGUN as one piece of work per beginning: each is its
    person's (`contact_key`) and its enrolment's (aspect), as if it had come
    alone, and `batch` names the message whose one result they make. A
    beginning no provider could be sent fails at once, the others go on."""
    begun = delivery.enrolments_begun.begun
    if not begun:
        error = "unreadable delivery: an enrolments.begun without beginnings"
        return [Work(msg, delivery, UNREADABLE, failed=True, error=error)]
    work = []
    moments = _Moments()  # the beginnings of a message were most likely decided at once
    # Each beginning's delivery: the message's, with the beginning's person (a copy
    # of this costs a third of building each with its fields).
    shared = bus_pb2.Delivery(
        id=delivery.id,
        type=delivery.type,
        sequence=delivery.sequence,
        create_time=delivery.create_time,
    )
    for change in begun:
        one = bus_pb2.Delivery()
        one.CopyFrom(shared)
        one.contact_key = person_key(change.email)
        try:
            read = translate.enrolment_of(change, delivery.create_time, moments.at)
        except ValueError as exc:
            error = f"unreadable beginning: {exc}"
            work.append(Work(msg, one, UNREADABLE, failed=True, error=error, batch=delivery))
            continue
        work.append(_fenced(Work(msg, one, UNREADABLE, enrolment=read, batch=delivery)))
    return work


class _Moments:
    """Timestamps as datetimes, each distinct one converted once."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, int], datetime] = {}

    def at(self, ts: timestamp_pb2.Timestamp) -> datetime:
        key = (ts.seconds, ts.nanos)
        if (moment := self._seen.get(key)) is None:
            moment = self._seen[key] = to_datetime(ts)
        return moment


def _fenced(w: Work) -> Work:
    """The work's aspect: its enrolment's fence; failed at once for an enrolment id
    that cannot serve as a fence key's token."""
    assert w.enrolment is not None
    enrolment_id = w.enrolment.enrolment_id
    if not _ENROLMENT_ID.fullmatch(enrolment_id):
        w.failed = True
        w.error = f"unreadable delivery: an enrolment change of enrolment {enrolment_id!r}"
        return w
    w.aspect = f"{FLOW}.{enrolment_id}"
    return w


async def change_enrolments(
    provider: Provider, changes: list[Work], run: RunCall, held: Holding
) -> None:
    """Everyone's changes in one plan of the provider's, run (`planned_calls`,
    `run_per_person`)."""
    await run_per_person(planned_calls(provider, changes), run, held)


def planned_calls(provider: Provider, changes: list[Work]) -> list[BulkCall[Work]]:
    """Everyone's changes in one plan of the provider's (one call may carry many
    people's), in calls within the provider's limits, in its order."""
    pairs = [(w, w.enrolment) for w in changes if w.enrolment is not None and not w.unsent]
    planned = provider.plan_enrolments(pairs, _accepted)
    return split_by_limits(planned, provider.limits.enrolments)


async def run_per_person(calls: list[BulkCall[Work]], run: RunCall, held: Holding) -> None:
    """The calls in their order per person (their enrolments in one flow share its
    provider state: a Klaviyo property, an ActiveCampaign automation): each call
    once the calls before it of every person it carries are done; calls of other
    people side by side (a few at once), so nobody waits for another."""
    limit = asyncio.Semaphore(CALLS_IN_FLIGHT)
    last: dict[str, asyncio.Task[None]] = {}

    async def after(call: BulkCall[Work], before: set[asyncio.Task[None]]) -> None:
        if before:
            await asyncio.wait(before)
        async with limit:
            await run(call, held)

    async with asyncio.TaskGroup() as group:  # a LeaseLost cancels the others
        for call in calls:
            people = {w.delivery.contact_key for w in call.owners}
            task = group.create_task(after(call, {last[p] for p in people if p in last}))
            last.update(dict.fromkeys(people, task))


def _accepted(w: Work, provider_id: str) -> None:
    w.provider_id = provider_id
