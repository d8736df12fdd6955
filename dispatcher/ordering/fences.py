"""Per-person fences in NATS KV: the newest change applied per (aspect, person),
so that an older change is never applied after a newer one (after a failover,
a redelivery)."""

from __future__ import annotations

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue


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
