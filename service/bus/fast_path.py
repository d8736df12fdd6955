"""Events straight to JetStream: the JetStream ack is the durability point.
Whatever the bus does not acknowledge in time goes to PostgreSQL instead."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from nats.js.api import PubAck

from service.bus import topology
from service.bus.connection import Bus
from service.bus.envelope import MSG_ID_HEADER, delivery
from service.storage.event_log import EventRecord, PostgresEventSink
from service.storage.outbox import OutboxKind

log = logging.getLogger(__name__)
DEFAULT_ACK_TIMEOUT_S = 2.0


class BusEventSink:
    def __init__(
        self, bus: Bus, fallback: PostgresEventSink, *, ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S
    ) -> None:
        self._bus = bus
        self._fallback = fallback
        self._ack_timeout_s = ack_timeout_s

    async def accept(self, records: list[EventRecord], now: datetime) -> set[str]:
        acks = await self._publish(records, now)
        accepted = {
            r.event_id for r, ack in zip(records, acks, strict=True) if ack and not ack.duplicate
        }
        unsure = [r for r, ack in zip(records, acks, strict=True) if ack is None]
        if unsure:
            log.warning(
                "bus did not acknowledge %d events; storing them in PostgreSQL", len(unsure)
            )
            accepted |= await self._fallback.accept(unsure, now)
        return accepted

    async def _publish(self, records: list[EventRecord], now: datetime) -> list[PubAck | None]:
        """One ack (or None: not known to be stored) per record, in order."""
        js = self._bus.js
        if js is None:
            return [None] * len(records)
        futures: list[asyncio.Future[PubAck]] = []
        try:
            for r in records:
                message = delivery(
                    id=r.event_id,
                    kind=OutboxKind.EVENT_TRACKED,
                    contact_key=r.contact_key,
                    sequence=0,
                    payload=r.delivery_json(),
                    created=now,
                )
                futures.append(
                    await js.publish_async(
                        topology.EVENTS_SUBJECT,
                        message.SerializeToString(),
                        headers={MSG_ID_HEADER: r.event_id},
                    )
                )
        except Exception as exc:
            log.warning("publishing events failed: %s", exc)
        acks = await acks_within(futures, self._ack_timeout_s)
        return acks + [None] * (len(records) - len(acks))


async def acks_within(
    futures: list[asyncio.Future[PubAck]], timeout_s: float
) -> list[PubAck | None]:
    """Each publication's ack, or None if it failed or did not come in time.
    (One timer for all, and no task per future: this runs for every RPC.)"""
    if not futures:
        return []
    timer = asyncio.get_running_loop().call_later(timeout_s, _cancel_pending, futures)
    try:
        results = await asyncio.gather(*futures, return_exceptions=True)
    finally:
        timer.cancel()
    return [r if isinstance(r, PubAck) else None for r in results]


def _cancel_pending(futures: list[asyncio.Future[PubAck]]) -> None:
    for future in futures:
        future.cancel()
