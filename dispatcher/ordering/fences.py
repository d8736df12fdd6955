"""Per-person fences in NATS KV: the newest change applied per (aspect, person),
so that an older change is never applied after a newer one (after a failover,
a redelivery)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from marketing_runtime.person_keys import person_key as person_key  # the fencing key
from nats.aio.client import Client
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from dispatcher.ordering.direct_reads import SUBJECTS_PER_REQUEST, DirectReadError, newest_values

log = logging.getLogger(__name__)
# The aspects of a person fenced apart: a newer consent change does not make
# an older profile change stale, nor the other way round.
PROFILE, CONSENT = "profile", "consent"
# Key-by-key reads kept in flight at once, when direct reads are not answered.
READS_IN_FLIGHT = 64


class Fences:
    """The newest outbox sequence applied per (aspect, person). With `nc` and the
    bucket's name, many fences are read in a few direct gets (`applied_to`)."""

    def __init__(self, kv: KeyValue, *, nc: Client | None = None, bucket: str = "") -> None:
        self._kv = kv
        self._nc, self._bucket = nc, bucket

    async def applied(self, aspect: str, contact_key: str) -> int:
        try:
            entry = await self._kv.get(f"{aspect}.{contact_key}")
        except KeyNotFoundError:
            return 0
        return int(entry.value or b"0")

    async def applied_to(self, aspect: str, contact_keys: Iterable[str]) -> dict[str, int]:
        """`applied` of each person (a sync batch asks about thousands)."""
        pairs = [(aspect, key) for key in contact_keys]
        return {key: applied for (_, key), applied in (await self.applied_many(pairs)).items()}

    async def applied_many(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """`applied` of each (aspect, person): in requests of many keys each, sent
        side by side, or key by key when the server does not answer those."""
        wanted = list(dict.fromkeys(pairs))
        if self._nc is not None and self._bucket:
            try:
                return await self._read_directly(wanted)
            except DirectReadError as exc:
                log.warning("fences read key by key: %s", exc)
        return await self._read_one_by_one(wanted)

    async def _read_directly(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        assert self._nc is not None
        prefix = f"$KV.{self._bucket}."
        subjects = [f"{prefix}{aspect}.{key}" for aspect, key in pairs]
        parts = [
            subjects[start : start + SUBJECTS_PER_REQUEST]
            for start in range(0, len(subjects), SUBJECTS_PER_REQUEST)
        ]
        stream = f"KV_{self._bucket}"
        found: dict[str, bytes] = {}
        for values in await asyncio.gather(
            *(newest_values(self._nc, stream, part) for part in parts)
        ):
            found.update(values)
        return {
            pair: int(found.get(subject) or b"0")
            for pair, subject in zip(pairs, subjects, strict=True)
        }

    async def _read_one_by_one(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        limit = asyncio.Semaphore(READS_IN_FLIGHT)

        async def read(aspect: str, contact_key: str) -> int:
            async with limit:
                return await self.applied(aspect, contact_key)

        values = await asyncio.gather(*(read(*pair) for pair in pairs))
        return dict(zip(pairs, values, strict=True))

    async def advance(
        self, aspect: str, contact_key: str, sequence: int, *, absent: bool = False
    ) -> None:
        """Move the fence up to `sequence` (never down). `absent`: the batch read
        found no fence, so it is created in one request (a new enrolment's);
        one written meanwhile falls back to compare-and-set."""
        key = f"{aspect}.{contact_key}"
        if absent:
            try:
                await self._kv.create(key, str(sequence).encode())
                return
            except KeyWrongLastSequenceError:
                pass
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
