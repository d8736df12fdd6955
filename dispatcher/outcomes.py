"""Reporting what became of deliveries: results for the service, dead letters
for manual review. Published before the work message is acked, so a crash in
between repeats the report (the service records it idempotently) rather than
losing it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from marketing.bus.v1 import bus_pb2
from nats.js import JetStreamContext
from nats.js.api import PubAck

from dispatcher import metrics
from service.bus import topology
from service.bus.connection import Bus
from service.bus.envelope import MSG_ID_HEADER
from service.clock import Clock
from service.timestamps import to_timestamp

REPORT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Outcome:
    delivery: bus_pb2.Delivery
    outcome: int  # bus_pb2.Outcome value
    attempts: int
    provider_id: str = ""
    error: str = ""


class Reporter:
    def __init__(self, bus: Bus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock

    @property
    def _js(self) -> JetStreamContext:
        js = self._bus.js
        if js is None:  # the work stays unacked and comes back after ack_wait
            raise ConnectionError("NATS is not connected: cannot report outcomes")
        return js

    async def report(self, outcomes: Sequence[Outcome]) -> None:
        """Publish the dead letters and one results message; wait for JetStream's acks."""
        if not outcomes:
            return
        futures = [
            await self._dead_letter(o) for o in outcomes if o.outcome == bus_pb2.OUTCOME_FAILED
        ]
        finished = to_timestamp(self._clock())
        batch = bus_pb2.DeliveryResults(results=[self._result(o, finished) for o in outcomes])
        futures.append(
            await self._js.publish_async(
                topology.RESULTS_SUBJECT,
                batch.SerializeToString(),
                headers={MSG_ID_HEADER: str(uuid.uuid4())},  # recording is idempotent anyway
            )
        )
        # An ack lost across a reconnect must not hold the batch forever: time
        # out, and the batch is handed back unacked.
        await asyncio.wait_for(asyncio.gather(*futures), REPORT_TIMEOUT_S)
        for o in outcomes:
            metrics.DELIVERIES.labels(o.delivery.kind, bus_pb2.Outcome.Name(o.outcome)).inc()

    def _result(self, o: Outcome, finished: Timestamp) -> bus_pb2.DeliveryResult:
        return bus_pb2.DeliveryResult(
            delivery_id=o.delivery.id,
            kind=o.delivery.kind,
            contact_key=o.delivery.contact_key,
            outcome=o.outcome,  # type: ignore[arg-type]
            provider_id=o.provider_id,
            error=o.error,
            attempts=o.attempts,
            finish_time=finished,
        )

    async def _dead_letter(self, o: Outcome) -> asyncio.Future[PubAck]:
        letter = bus_pb2.DeadLetter(
            delivery=o.delivery,
            error=o.error,
            attempts=o.attempts,
            fail_time=to_timestamp(self._clock()),
        )
        return await self._js.publish_async(
            topology.dead_subject(o.delivery.kind),
            letter.SerializeToString(),
            headers={MSG_ID_HEADER: f"{o.delivery.id}.dead.{o.attempts}"},
        )
