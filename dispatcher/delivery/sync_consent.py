"""A full contact sync's second stage: the consent of a chunk's imported
people (`ContactSyncConsent`, handed on by the import stage, `sync.py`) goes
to the provider through its consent calls (`plan_consent`), each split by its
operation's limits; then the chunk's result is published and the message
acked.

A batch of many chunks (20 by default) is sent together, so that the calls
are full: a chunk of a thousand people has some 110 to unsubscribe, which
twenty chunks together send in 22 calls of 100, apart in 40. The operations
go one after another in the provider's order, which is each person's order
(a person has at most one item in each); the calls of one operation, about
different people, go side by side, each endpoint having a budget of its own.
They are bulk work: live consent changes keep the compliance share of each
endpoint.

A consent state the ordered path has since changed is not sent (the fences,
as in `sync.py`). A call refused for good, or given up on, fails its people
("consent: ..." in the result's failures); they were imported all the same.
"""

from __future__ import annotations

import asyncio
import itertools
import logging

from marketing.bus.v1 import bus_pb2
from marketing_runtime.connection import Bus
from nats.aio.msg import Msg

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
)
from dispatcher.ordering.fences import CONSENT, Fences
from dispatcher.providers.base import Provider

log = logging.getLogger(__name__)
_PREFIX = "consent: "


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
        # A copy: a part of a parsed message keeps the whole message alive (upb
        # allocates it in one arena), and the chunk is held until its calls are
        # done. 0.6 MB a chunk of a thousand people became 0.27 MB.
        imported = bus_pb2.ContactSyncChunkResult()
        imported.CopyFrom(message.imported)
        chunk = Chunk(
            msg, imported.sync_id, imported.sequence, message.outbox_sequence, imported=imported
        )
        for state in message.people:
            consent = translate.consent_of(state)
            # (The consent's email string, not a second copy of it.)
            chunk.people.append(Person(chunk, consent.change.email, consent=consent))
        msg.data = b""  # read (see sync.py)
        return chunk

    def _give_up_chunk(self, chunk: Chunk, reason: str) -> None:
        """Imported, their consent unknown at the provider: each fails, and the
        chunk is given up (its sync ends FAILED, naming it)."""
        for p in chunk.people:
            p.failure = (_PREFIX + reason)[:MAX_REASON]
        chunk.error = (_PREFIX + reason)[:MAX_REASON]

    async def _work(self, chunks: list[Chunk], held: Holding) -> None:
        people = [p for chunk in chunks for p in chunk.people]
        sending = await self.not_newer_at_provider(CONSENT, people)
        states = [(p, c) for p in sending if (c := p.consent) is not None]
        runner = self.runner(held, lost=False, prefix=_PREFIX)
        # In a thread, as the ordered workers plan: twenty thousand people's plan holds
        # the event loop for tens of milliseconds, and stamped requests wait to leave.
        planned = await asyncio.to_thread(self._provider.plan_consent, states, self._list_id)
        parts = split_by_limits(planned, self._provider.limits.consent)
        for _, stage in itertools.groupby(parts, key=lambda call: call.operation):
            async with asyncio.TaskGroup() as calls:
                for call in stage:
                    calls.create_task(runner.run(call))

    async def _hand_on(self, chunks: list[Chunk]) -> None:
        await self.publish_results(chunks)
