"""Events straight to JetStream: the JetStream ack is the durability point.
Whatever the bus does not acknowledge in time goes to PostgreSQL instead."""

from __future__ import annotations

import logging
from datetime import datetime

from service.bus import topology
from service.bus.connection import Bus
from service.bus.envelope import serialized_deliveries
from service.bus.publisher import Ack
from service.storage.event_log import EventRecord, PostgresEventSink
from service.storage.outbox import OutboxKind
from service.timestamps import to_timestamp

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

    async def _publish(self, records: list[EventRecord], now: datetime) -> list[Ack | None]:
        """One ack (or None: not known to be stored) per record, in order."""
        publisher = self._bus.publisher
        if publisher is None:
            return [None] * len(records)
        created = to_timestamp(now)
        items = ((r.event_id, r.contact_key, r.delivery_json()) for r in records)
        serialized = serialized_deliveries(OutboxKind.EVENT_TRACKED, items, created)
        messages = list(zip((r.event_id for r in records), serialized, strict=True))
        try:
            return await publisher.publish(
                topology.EVENTS_SUBJECT, messages, timeout_s=self._ack_timeout_s
            )
        except Exception as exc:  # the connection broke while writing
            log.warning("publishing events failed: %s", exc)
            return [None] * len(records)
