"""State the dispatcher replicas share through NATS KV: the lease that elects
who processes ordered work, and the per-person fences that make sure an older
change is never applied after a newer one."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class Lease:
    """Held by one owner at a time until it lapses (`ttl_s` without renewal).
    Owners should keep their clocks in sync (NTP); the margin absorbs skew."""

    def __init__(
        self,
        kv: KeyValue,
        key: str,
        owner: str,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._kv, self._key, self._owner, self._ttl = kv, key, owner, ttl_s
        self._clock = clock
        self._held_until = 0.0

    def held(self) -> bool:
        """Ours with margin to spare (no round trip): checked before each provider call."""
        return self._clock() < self._held_until - self._ttl / 3

    async def acquire_or_renew(self) -> bool:
        now = self._clock()
        value = json.dumps({"owner": self._owner, "expires": now + self._ttl}).encode()
        try:
            entry = await self._kv.get(self._key)
        except KeyNotFoundError:
            return await self._write(now, lambda: self._kv.create(self._key, value))
        current = json.loads(entry.value or b"{}")
        if current.get("owner") != self._owner and current.get("expires", 0) > now:
            self._held_until = 0.0
            return False
        revision = entry.revision
        return await self._write(now, lambda: self._kv.update(self._key, value, last=revision))

    async def _write(self, now: float, write: Callable[[], object]) -> bool:
        try:
            await write()  # type: ignore[misc]
        except KeyWrongLastSequenceError:
            self._held_until = 0.0
            return False
        self._held_until = now + self._ttl
        return True

    async def release(self) -> None:
        if self._held_until:
            self._held_until = 0.0
            try:
                entry = await self._kv.get(self._key)
                if json.loads(entry.value or b"{}").get("owner") == self._owner:
                    await self._kv.delete(self._key, last=entry.revision)
            except (KeyNotFoundError, KeyWrongLastSequenceError):
                pass


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


class ErasureMarks:
    """When each erased person's erasure was accepted, shared by all replicas.

    The ordered worker marks an erasure once the provider accepted it; event
    workers watch the marks and drop events accepted before it, so an event
    still on the bus cannot re-create an erased profile."""

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
