"""Per-person fences in NATS KV: the newest change applied per (aspect, person),
so that an older change is never applied after a newer one (after a failover,
a redelivery)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

# The aspects of a person fenced apart: a newer consent change does not make
# an older profile change stale, nor the other way round.
PROFILE, CONSENT = "profile", "consent"
# Fence reads one sync batch keeps in flight at once (one KV get each).
READS_IN_FLIGHT = 64


def person_key(normalized_email: str) -> str:
    """A person's fencing key from their normalised email: SHA-256, as the
    service computes `Delivery.contact_key` (bus.proto)."""
    return hashlib.sha256(normalized_email.encode()).hexdigest()


class Fences:
    """The newest outbox sequence applied per (aspect, person)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def applied(self, aspect: str, contact_key: str) -> int:
        try:
            entry = await self._kv.get(f"{aspect}.{contact_key}")
        except KeyNotFoundError:
            return 0
        return int(entry.value or b"0")

    async def applied_to(self, aspect: str, contact_keys: Iterable[str]) -> dict[str, int]:
        """`applied` of each person, read side by side (a sync batch asks about
        thousands: one at a time would take a round trip each)."""
        limit = asyncio.Semaphore(READS_IN_FLIGHT)

        async def read(contact_key: str) -> tuple[str, int]:
            async with limit:
                return contact_key, await self.applied(aspect, contact_key)

        return dict(await asyncio.gather(*(read(key) for key in set(contact_keys))))

    async def advance(self, aspect: str, contact_key: str, sequence: int) -> None:
        key = f"{aspect}.{contact_key}"
        for _ in range(5):  # compare-and-set; another writer is rare (failover only)
            try:
                entry = await self._kv.get(key)
            except KeyNotFoundError:
                try:
                    await self._kv.create(key, str(sequence).encode())
                    return
                except KeyWrongLastSequenceError:
                    continue
            if int(entry.value or b"0") >= sequence:
                return
            try:
                await self._kv.update(key, str(sequence).encode(), last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue
