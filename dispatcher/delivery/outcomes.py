"""Reporting what became of deliveries: results for the service, dead letters
for manual review. Published before the work message is acked, so a crash in
between repeats the report (the service records it idempotently) rather than
losing it. Nothing published here is larger than the server's max_payload
(the server would close the connection): results are split over as many
messages as that takes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp
from marketing.bus.v1 import bus_pb2
from marketing_runtime import kinds, topology
from marketing_runtime.clock import Clock
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import MSG_ID_HEADER, too_large, wire_size
from marketing_runtime.timestamps import to_timestamp
from nats.js import JetStreamContext
from nats.js.api import PubAck

from dispatcher import metrics

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

    async def report(self, outcomes: Sequence[Outcome]) -> None:
        """Publish the dead letters and the results (one message, or several
        when one would not fit the server's max_payload); wait for JetStream's acks."""
        if not outcomes:
            return
        nc, js = self._bus.nc, self._bus.js
        if nc is None or js is None:  # the work stays unacked and comes back after ack_wait
            raise ConnectionError("NATS is not connected: cannot report outcomes")
        limit = nc.max_payload
        futures = [
            await self._dead_letter(js, o, limit)
            for o in outcomes
            if o.outcome == bus_pb2.OUTCOME_FAILED
        ]
        finished = to_timestamp(self._clock())
        results = [self._result(o, finished) for o in outcomes]
        for batch in results_messages(results, limit):
            # A new id each: recording is idempotent anyway.
            headers = {MSG_ID_HEADER: str(uuid.uuid4())}
            futures.append(await js.publish_async(topology.RESULTS_SUBJECT, batch, headers=headers))
        # An ack lost across a reconnect must not hold the batch forever: time
        # out, and the batch is handed back unacked.
        await asyncio.wait_for(asyncio.gather(*futures), REPORT_TIMEOUT_S)
        for o in outcomes:
            metrics.DELIVERIES.labels(_kind_name(o.delivery), bus_pb2.Outcome.Name(o.outcome)).inc()

    def _result(self, o: Outcome, finished: Timestamp) -> bus_pb2.DeliveryResult:
        result = bus_pb2.DeliveryResult(
            delivery_id=o.delivery.id,
            type=o.delivery.type,
            contact_key=o.delivery.contact_key,
            outcome=o.outcome,  # type: ignore[arg-type]
            provider_id=o.provider_id,
            error=o.error,
            attempts=o.attempts,
            finish_time=finished,
        )
        # The kind as text too: a service of the previous release, still running
        # while the dispatchers are upgraded first, records results by it. For an
        # old release's delivery the decoder could not read, its own old kind
        # string tells the service what the delivery id is an id of.
        unread = o.delivery.type == bus_pb2.KIND_UNSPECIFIED
        result.kind = o.delivery.kind if unread else kinds.name(o.delivery.type)
        return result

    async def _dead_letter(
        self, js: JetStreamContext, o: Outcome, limit: int
    ) -> asyncio.Future[PubAck]:
        headers = {MSG_ID_HEADER: f"{o.delivery.id}.dead.{o.attempts}"}
        data = dead_letter(o, to_timestamp(self._clock()), limit, headers)
        subject = topology.dead_subject(_kind_name(o.delivery))
        return await js.publish_async(subject, data, headers=headers)


def dead_letter(o: Outcome, failed: Timestamp, limit: int, headers: dict[str, str]) -> bytes:
    """The DeadLetter of a failed outcome, fitting the server's max_payload
    (`limit`) with its `headers`. When the whole letter is larger, its
    delivery's payload is left out and the error says so (the payload stays in
    PostgreSQL with the failed delivery): the delivery came over the bus, so
    only a long error can have pushed it over, and that is cut short if need be."""
    letter = bus_pb2.DeadLetter(
        delivery=o.delivery, error=o.error, attempts=o.attempts, fail_time=failed
    )
    data = letter.SerializeToString()
    size = wire_size(data, headers)
    if size <= limit:
        return data
    note = f" (payload left out: {too_large(size, limit)})"
    letter.delivery.ClearField("payload")
    letter.delivery.ClearField("payload_json")  # of an old message no release could read
    letter.error = o.error + note
    if wire_size(letter.SerializeToString(), headers) > limit:
        letter.error = o.error[:_KEEP_OF_LONG_ERROR] + _CUT_SHORT + note
    return letter.SerializeToString()


def _kind_name(delivery: bus_pb2.Delivery) -> str:
    """The delivery's kind name for labels and subjects; for one without a type
    (dead-lettered as unreadable), the old release's kind string, or "unknown"."""
    return kinds.label(delivery.type, delivery.kind)


# A results message's id header, as the server counts it (a uuid4 value).
_RESULTS_HEADER_SIZE = wire_size(b"", {MSG_ID_HEADER: str(uuid.UUID(int=0))})
_KEEP_OF_LONG_ERROR = 1000  # characters of an error too long for a message of its own
_CUT_SHORT = " [cut short: too long for the bus]"


def results_messages(results: Sequence[bus_pb2.DeliveryResult], limit: int) -> list[bytes]:
    """`DeliveryResults` messages holding `results` in order, each (with its id
    header) at most `limit` bytes; a result too large for a message alone
    (a very long error text) has its error cut short."""
    budget = limit - _RESULTS_HEADER_SIZE
    messages: list[bytes] = []
    batch = bus_pb2.DeliveryResults()
    used = 0
    for result in results:
        size = _field_size(result)
        if size > budget:
            result = _shortened(result)
            size = _field_size(result)
        if used + size > budget and batch.results:
            messages.append(batch.SerializeToString())
            batch, used = bus_pb2.DeliveryResults(), 0
        batch.results.append(result)
        used += size
    if batch.results:
        messages.append(batch.SerializeToString())
    return messages


def _field_size(result: bus_pb2.DeliveryResult) -> int:
    """Bytes `result` takes in a DeliveryResults: tag, length, message."""
    size = result.ByteSize()
    return 1 + max(1, (size.bit_length() + 6) // 7) + size


def _shortened(result: bus_pb2.DeliveryResult) -> bus_pb2.DeliveryResult:
    short = bus_pb2.DeliveryResult()
    short.CopyFrom(result)
    short.error = result.error[:_KEEP_OF_LONG_ERROR] + _CUT_SHORT
    return short
