"""Erasure marks in NATS KV: when each erased person's erasure was accepted, so
that no replica sends an event of that person accepted before it."""

from __future__ import annotations

from nats.js.kv import KeyValue


class ErasureMarks:
    """When each erased person's erasure was accepted, shared by all replicas.

    The contacts worker marks an erasure once the provider accepted it; event
    workers and the enrolments worker watch the marks and drop events and
    enrolment changes accepted before it, so work still on the bus cannot
    re-create an erased profile."""

    PREFIX = "erased"

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._erased: dict[str, float] = {}

    async def mark(self, contact_key: str, accepted_at: float) -> None:
        await self._kv.put(f"{self.PREFIX}.{contact_key}", str(accepted_at).encode())

    def __bool__(self) -> bool:
        return bool(self._erased)

    def erased_since(self, contact_key: str, accepted_at: float) -> bool:
        """True when the person was erased after this event was accepted."""
        return self._erased.get(contact_key, float("-inf")) >= accepted_at

    async def follow(self) -> None:
        """Keep the local copy current; runs until cancelled."""
        watcher = await self._kv.watch(f"{self.PREFIX}.*")
        async for entry in watcher:
            if entry is None or entry.value is None:  # end of the initial values
                continue
            key = entry.key.removeprefix(f"{self.PREFIX}.")
            self._erased[key] = float(entry.value)
