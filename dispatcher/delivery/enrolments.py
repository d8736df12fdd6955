"""Delivers flow enrolment changes (KIND_ENROLMENT_CHANGED, and KIND_ENROLMENTS_BEGUN: many
beginnings in one message; on `marketing.work.enrolments`) in order, holding a lease of
their own: one replica at a time applies them, so a beginning and its end are never sent
by two replicas at once.

They have their own subject and worker because with Klaviyo they go in bulk event jobs,
whose budget (10/s, 150/min) the events worker shares: while it drains a backlog, a batch
of enrolment changes waits up to a minute for a call, and on the contacts subject the
consent changes and unsubscribes behind it would wait as long. Here they wait alone; this
worker makes no consent call.

The ordering rules are those of all ordered work (ordered.py), per enrolment: fenced per
enrolment (`marketing_enrolment_fences`), an end superseding its own enrolment's beginning
in the same batch, a change made before its person's erasure not sent after it (the
erasure marks the contacts worker writes), everyone's changes in one plan of the
provider's (enrolment_changes.py). They are not ordered against the person's profile and
consent work, which travels on the contacts subject: the provider checks consent when a
flow's message is due, and a beginning carries its person's email.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds
from marketing_runtime.clock import Sleep
from marketing_runtime.envelope import parse_delivery
from nats.aio.msg import Msg

from dispatcher.delivery.enrolment_changes import (
    CALLS_IN_FLIGHT,
    begun_work,
    enrolment_work,
    planned_calls,
    run_per_person,
)
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import Holding, Interval
from dispatcher.delivery.ordered import UNREADABLE, OrderedWorker, Work, unreadable
from dispatcher.delivery.outcomes import Reporter
from dispatcher.ordering.erasure import ErasureMarks
from dispatcher.ordering.fences import Fences
from dispatcher.ordering.lease import Lease
from dispatcher.providers.base import BulkCall, Provider

KINDS = (bus_pb2.KIND_ENROLMENT_CHANGED, bus_pb2.KIND_ENROLMENTS_BEGUN)
# Rounds of the calls in flight a part of a fetched batch carries, at most: with Klaviyo
# 8 bulk jobs (about 1 s of its 10 a second), with ActiveCampaign 8 people. The next
# part is read and planned while a part's calls are answered, and of other people it
# is sent beside them (OrderedWorker._handle_parts).
PART_ROUNDS = 1


class EnrolmentsWorker(OrderedWorker[list[BulkCall[Work]]]):
    PLANS_IN_THREAD = True  # a part of 8,000 beginnings: their events are encoded ahead

    def __init__(
        self,
        provider: Provider,
        reporter: Reporter,
        gate: ProviderGate,
        lease: Lease,
        erasures: ErasureMarks,
        *,
        enrolment_fences: Fences,
        connection_ended: Callable[[], asyncio.Event],
        max_attempts: int,
        backoff_base_s: float,
        keepalive_s: Interval,
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
        self._enrolment_fences = enrolment_fences

    def _operations(self) -> Iterable[str]:
        return self._provider.limits.enrolments

    def _read(self, msg: Msg) -> list[Work]:
        delivery = parse_delivery(msg.data)
        if delivery.type not in KINDS or delivery.WhichOneof("payload") != kinds.payload_field(
            delivery.type
        ):
            # Sending cannot make it readable: fail it now, or it would hold up the batch.
            error = unreadable(delivery, KINDS, "enrolment work")
            return [Work(msg, delivery, UNREADABLE, failed=True, error=error)]
        if delivery.type == bus_pb2.KIND_ENROLMENTS_BEGUN:
            return begun_work(msg, delivery)
        return [enrolment_work(msg, delivery)]

    def _least_at_once(self) -> int:
        """A call's worth: a part of single changes waits for a whole bulk job (while
        the part before is sent); a message of a thousand beginnings is one."""
        return self._per_call()

    def _per_call(self) -> int:
        return max((lim.max_items for lim in self._provider.limits.enrolments.values()), default=1)

    def _most_at_once(self) -> int | None:
        """As many beginnings and ends as PART_ROUNDS rounds of the calls in flight
        carry: a fetch bounded by bytes may hold tens of thousands of beginnings, and
        exits must not wait behind them all (ActiveCampaign calls one person at a
        time), but a part whose people the next shares settles (fences, results,
        acks) before the next part's calls, so parts are not small."""
        return PART_ROUNDS * CALLS_IN_FLIGHT * self._per_call()

    def _fences_of(self, aspect: str) -> Fences:
        return self._enrolment_fences  # every change read is an enrolment's

    def _plan(self, segment: list[Work]) -> list[BulkCall[Work]]:
        """The segment's calls, planned ahead (a thousand beginnings' events
        encoded) while the part before is sent."""
        return planned_calls(self._provider, segment)

    async def _apply(self, segment: list[Work], held: Holding, plan: list[BulkCall[Work]]) -> None:
        await run_per_person(plan, self._run, held)
