"""Events straight to JetStream: the JetStream ack is the durability point.
Whatever the bus does not acknowledge in time goes to PostgreSQL instead."""

from __future__ import annotations

import logging
from datetime import datetime

from marketing_runtime import topology
from marketing_runtime.connection import Bus
from marketing_runtime.envelope import serialized_events
from marketing_runtime.publisher import Ack
from marketing_runtime.timestamps import to_timestamp

from service.events.event_log import EventRecord, PostgresEventSink
from service.metrics import EVENTS_FALLBACK

log = logging.getLogger(__name__)
DEFAULT_ACK_TIMEOUT_S = 2.0


class BusEventSink:
    def __init__(
        self, bus: Bus, fallback: PostgresEventSink, *, ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S
    ) -> None:
        self._bus = bus
        self._fallback = fallback
        self._ack_timeout_s = ack_timeout_s
        self._fallback_log = FallbackLog()

    async def accept(self, records: list[EventRecord], now: datetime) -> set[str]:
        acks, reason = await self._publish(records, now)
        accepted = {
            r.event_id for r, ack in zip(records, acks, strict=True) if ack and not ack.duplicate
        }
        unsure = [r for r, ack in zip(records, acks, strict=True) if ack is None]
        if unsure:
            self._fallback_log.started(reason)
            accepted |= await self._fallback.accept(unsure, now)
            self._fallback_log.stored(len(unsure))
        elif records:
            self._fallback_log.ended()
        return accepted

    async def _publish(
        self, records: list[EventRecord], now: datetime
    ) -> tuple[list[Ack | None], str]:
        """One ack (or None: not known to be stored) per record, in order, and
        why a None is there."""
        publisher = self._bus.publisher
        if publisher is None:
            return [None] * len(records), "not connected to NATS"
        created = to_timestamp(now)
        serialized = serialized_events((r.bus_event() for r in records), created)
        messages = list(zip((r.event_id for r in records), serialized, strict=True))
        try:
            acks = await publisher.publish(
                topology.EVENTS_SUBJECT, messages, timeout_s=self._ack_timeout_s
            )
        except Exception as exc:  # the connection broke while writing
            return [None] * len(records), f"publishing failed: {exc!r}"
        return acks, f"no acknowledgement within {self._ack_timeout_s} s, or refused"


class FallbackLog:
    """The fallback to PostgreSQL as two log lines, when it starts and when it
    ends, not one per call: while NATS is down every TrackEvent falls back,
    thousands a second under load. Every event stored is counted in
    marketing_events_fallback_total."""

    def __init__(self) -> None:
        self._active = False
        self._stored = 0

    def started(self, reason: str) -> None:
        if not self._active:
            self._active, self._stored = True, 0
            log.warning(
                "bus fallback started: %s; storing events in PostgreSQL until the bus "
                "acknowledges again (the outbox relay publishes them)",
                reason,
            )

    def stored(self, count: int) -> None:
        self._stored += count
        EVENTS_FALLBACK.inc(count)

    def ended(self) -> None:
        if self._active:
            self._active = False
            log.info(
                "bus fallback ended: the bus acknowledges again; %d events went to "
                "PostgreSQL meanwhile",
                self._stored,
            )
