"""A full contact sync's consent stage: consent states (`ContactSyncConsent`)
go to the provider through its consent calls (`plan_consent`), each split by
its operation's limits; then the message's result is published and the
message acked. The states come in two kinds of message: consent pages, which
the service's sync driver publishes ahead of the imports (so that the
provider's consent minutes fill as early as their budget allows), and, for a
sync begun before pages existed, the consent of a chunk's imported people,
handed on by the import stage (`sync.py`). Both are handled alike: a
message's `imported` is the result it reports, with the consent calls'
refusals added.

A batch of many chunks (20 by default) is sent together, so that the calls
are full: a chunk of a thousand people has some 110 to unsubscribe, which
twenty chunks together send in 22 calls of 100, apart in 40. The operations
go one after another in the provider's order, which is each person's order
(a person has at most one item in each); the calls of one operation, about
different people, go side by side, each endpoint having a budget of its own.
They are bulk work: live consent changes keep the compliance share of each
endpoint.

An operation whose minute is spent is not waited for. Klaviyo's consent
endpoints take 637 of a sync's calls a minute and a million people need up
to 1,100 of one, so a minute runs out mid-sync; had the batch waited, every
loop would soon wait on that one endpoint and the others' calls would stop
too. Instead, the people with calls of that operation or a later one are
handed on as a remainder (`first_operation`, Nats-Msg-Id
`<sync_id>:<sequence>:consent@<n>`, carrying the chunk's result so far), the
message is acked, and the loop takes the next batch. A remainder fetched
while its operation's minute is still spent goes back to the stream with a
nak delayed until then. Each person's operations still go in order, each
once: a remainder skips the operations before its first.

A consent state the ordered path has since changed is not sent (the fences,
as in `sync.py`). A call refused for good, or given up on, fails its people
("consent: ..." in the result's failures); they were imported all the same.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Mapping

from marketing.bus.v1 import bus_pb2
from marketing_runtime import topology
from marketing_runtime.connection import Bus
from nats.aio.msg import Msg

from dispatcher import metrics
from dispatcher.delivery import translate
from dispatcher.delivery.calls import split_by_limits
from dispatcher.delivery.gate import ProviderGate
from dispatcher.delivery.keepalive import Holding
from dispatcher.delivery.sync_stage import (
    CONSENT_MSG_ID_SUFFIX,
    MAX_REASON,
    Chunk,
    ChunkStage,
    Person,
    StageSettings,
    result_of,
)
from dispatcher.ordering.fences import CONSENT, Fences
from dispatcher.providers.base import BulkCall, Provider

log = logging.getLogger(__name__)
_PREFIX = "consent: "
# Longer than a call's usual wait for its endpoint's second (Klaviyo: 75 a
# second): a wait this long means the endpoint's minute is spent.
DEFER_AFTER_S = 2.0


class SyncConsentWorker(ChunkStage):
    msg_id_suffix = CONSENT_MSG_ID_SUFFIX

    def __init__(
        self,
        provider: Provider,
        bus: Bus,
        gate: ProviderGate,
        fences: Fences,
        settings: StageSettings,
        *,
        newsletter_list_id: str | None,
    ) -> None:
        super().__init__(provider, bus, gate, fences, settings)
        self._list_id = newsletter_list_id or None

    def pause_left(self) -> float:
        """While every consent endpoint is throttled, fetching more would not help."""
        operations = tuple(self._provider.limits.consent)
        return min((self._gate.pause_left(op) for op in operations), default=0.0)

    def _read(self, msg: Msg) -> Chunk | None:
        message = bus_pb2.ContactSyncConsent()
        try:
            message.ParseFromString(msg.data)
        except Exception:
            log.error("an unreadable sync consent stage (%d bytes) dropped", len(msg.data))
            return None
        imported = message.imported
        chunk = Chunk(
            msg,
            imported.sync_id,
            imported.sequence,
            message.outbox_sequence,
            imported=imported,
            first_operation=message.first_operation,
            deferrals=message.deferrals,
        )
        for state in message.people:
            consent = translate.consent_of(state)
            # (The consent's email string, not a second copy of it; the state
            # is kept, small, should the person be handed on again.)
            chunk.people.append(
                Person(chunk, consent.change.email, consent=consent, consent_message=state)
            )
        msg.data = b""  # read (see sync.py)
        return chunk

    def _give_up_chunk(self, chunk: Chunk, reason: str) -> None:
        """Imported, their consent unknown at the provider: each fails, and the
        chunk is given up (its sync ends FAILED, naming it)."""
        chunk.remainder.clear()
        for p in chunk.people:
            p.failure = (_PREFIX + reason)[:MAX_REASON]
        chunk.error = (_PREFIX + reason)[:MAX_REASON]

    async def _park(self, chunks: list[Chunk]) -> list[Chunk]:
        """A remainder whose first operation's minute is still spent goes back
        to the stream until it is not (a nak with that delay): it would only
        wait here, holding a loop."""
        waits: dict[str, float] = {}
        ready = []
        for chunk in chunks:
            operation = chunk.first_operation
            if operation and operation not in waits:
                waits[operation] = await self._gate.room_wait(operation, bulk=True)
            if operation and waits[operation] > DEFER_AFTER_S:
                await chunk.msg.nak(delay=waits[operation])
                continue
            ready.append(chunk)
        return ready

    async def _work(self, chunks: list[Chunk], held: Holding) -> None:
        """The calls, one operation after another (each person's order). An
        operation whose minute is spent (its next call would wait more than
        DEFER_AFTER_S) is not waited for: the people with calls of it or of a
        later operation are handed on from it (`_hand_on`), and the loop is
        free for other chunks, whose other operations may have room."""
        people = [p for chunk in chunks for p in chunk.people]
        sending = await self.not_newer_at_provider(CONSENT, people)
        states = [(p, c) for p in sending if (c := p.consent) is not None]
        runner = self.runner(held, lost=False, prefix=_PREFIX)
        order = {operation: rank for rank, operation in enumerate(self._provider.limits.consent)}
        planned = [
            call
            for whole in self._provider.plan_consent(states, self._list_id)
            if (call := _not_done_before(whole, order)).owners
        ]
        parts = split_by_limits(planned, self._provider.limits.consent)
        stages = [
            (operation, list(calls))
            for operation, calls in itertools.groupby(parts, key=lambda call: call.operation)
        ]
        for index, (operation, calls) in enumerate(stages):
            if await self._gate.room_wait(operation, bulk=True) > DEFER_AFTER_S:
                _hand_on_from(operation, [call for _, later in stages[index:] for call in later])
                return
            async with asyncio.TaskGroup() as running:
                for call in calls:
                    running.create_task(runner.run(call))

    async def _hand_on(self, chunks: list[Chunk]) -> None:
        """Each chunk's result; or, for a chunk with people handed on, its
        remainder (whose result so far travels with it)."""
        remainders: list[tuple[str, bytes]] = []
        done: list[Chunk] = []
        for chunk in chunks:
            if not chunk.remainder:
                done.append(chunk)
                continue
            deferrals = chunk.deferrals + 1
            remainder = bus_pb2.ContactSyncConsent(
                imported=result_of(chunk),
                outbox_sequence=chunk.outbox_sequence,
                people=[p.consent_message for p in chunk.remainder if p.consent_message],
                first_operation=chunk.remainder_from,
                deferrals=deferrals,
            )
            msg_id = f"{chunk.sync_id}:{chunk.sequence}{CONSENT_MSG_ID_SUFFIX}@{deferrals}"
            remainders.append((msg_id, remainder.SerializeToString()))
        if remainders:
            metrics.SYNC_CONSENT_HANDED_ON.inc(len(remainders))
            await self.publish(topology.SYNC_CONSENT_SUBJECT, remainders)
        if done:
            await self.publish_results(done)


def _not_done_before(call: BulkCall[Person], order: Mapping[str, int]) -> BulkCall[Person]:
    """The call for the people whose remainder does not begin after its operation."""
    rank = order[call.operation]
    owners = [p for p in call.owners if order.get(p.chunk.first_operation, -1) <= rank]
    return call if len(owners) == len(call.owners) else BulkCall(call.operation, owners, call.send)


def _hand_on_from(operation: str, calls: list[BulkCall[Person]]) -> None:
    """Mark the people of `calls` (this operation's and later ones') to be
    handed on from `operation`, each once, in their chunks."""
    seen: set[int] = set()
    for call in calls:
        for p in call.owners:
            if id(p) not in seen:
                seen.add(id(p))
                p.chunk.remainder.append(p)
                p.chunk.remainder_from = operation
