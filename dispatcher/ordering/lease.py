"""A lease, kept in NATS KV, that elects the one replica processing an ordered
consumer's work (profile and consent work has one, flow enrolment changes
another: topology.CONTACTS_LEASE, ENROLMENTS_LEASE); the others stand by until
it lapses."""

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

    @property
    def key(self) -> str:
        return self._key

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
