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

from marketing.bus.v1 import bus_pb2
from nats.aio.msg import Msg

from dispatcher.delivery import translate
from dispatcher.delivery.calls import split_by_limits
from dispatcher.delivery.keepalive import Holding
from dispatcher.delivery.ordered import FLOW, UNREADABLE, Work
from dispatcher.providers.base import BulkCall, Provider

RunCall = Callable[[BulkCall[Work], Holding], Awaitable[None]]
# Calls of different people in flight at once.
CALLS_IN_FLIGHT = 8
# What an enrolment id (a UUID) may be to serve as a fence key's token.
_ENROLMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def enrolment_work(msg: Msg, delivery: bus_pb2.Delivery) -> Work:
    """An enrolment change, read now: one no provider could be sent fails at once."""
    try:
        change = translate.enrolment_change(delivery)
    except ValueError as exc:
        return Work(msg, delivery, UNREADABLE, failed=True, error=f"unreadable delivery: {exc}")
    if not _ENROLMENT_ID.fullmatch(change.enrolment_id):
        error = f"unreadable delivery: an enrolment change of enrolment {change.enrolment_id!r}"
        return Work(msg, delivery, UNREADABLE, failed=True, error=error)
    return Work(msg, delivery, f"{FLOW}.{change.enrolment_id}", enrolment=change)


async def change_enrolments(
    provider: Provider, changes: list[Work], run: RunCall, held: Holding
) -> None:
    """Everyone's changes in one plan of the provider's (one call may carry many
    people's), run in its order per person (their enrolments in one flow share its
    provider state: a Klaviyo property, an ActiveCampaign automation)."""
    pairs = [(w, w.enrolment) for w in changes if w.enrolment is not None and not w.unsent]
    planned = provider.plan_enrolments(pairs, _accepted)
    await _run_per_person(split_by_limits(planned, provider.limits.enrolments), run, held)


async def _run_per_person(calls: list[BulkCall[Work]], run: RunCall, held: Holding) -> None:
    """Each call once the calls before it of every person it carries are done; calls
    of other people side by side (a few at once), so nobody waits for another."""
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
