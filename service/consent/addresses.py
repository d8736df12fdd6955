"""The per-address locks that serialise consent writes: a transaction-scoped
advisory lock on the email's SHA-256, held also while no contact exists (the
suppression list outlives contacts). Two addresses sharing the 32-bit key only
wait for each other."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# The first key of the two-key advisory locks (a key space of its own:
# PostgreSQL keeps it apart from one-key locks).
_ADDRESS_LOCK_SPACE = 0x636F6E73  # "cons"

# In key order, one statement for any number: two batches never wait on each
# other in a cycle.
_LOCK = text(
    "SELECT pg_advisory_xact_lock(:space, a.id)"
    " FROM (SELECT id FROM unnest(CAST(:ids AS integer[])) AS u(id) ORDER BY id) AS a"
)
# Taken only when free: a worker skips an address another transaction holds
# rather than wait behind it.
_TRY_LOCK = text(
    "SELECT a.id FROM unnest(CAST(:ids AS integer[])) AS a(id)"
    " WHERE pg_try_advisory_xact_lock(:space, a.id)"
)


def _lock_id(key: str) -> int:
    """The lock's second key: the first 32 bits of the address's SHA-256 (hex), as
    a signed integer. Increasing with the key, so key order is lock order."""
    return int(key[:8], 16) - (1 << 31)


async def lock_addresses(session: AsyncSession, keys: Iterable[str]) -> None:
    """Hold these addresses (email keys) until commit, waiting for each."""
    ids = sorted({_lock_id(key) for key in keys})
    if ids:
        await session.execute(_LOCK, {"space": _ADDRESS_LOCK_SPACE, "ids": ids})


async def try_lock_addresses(session: AsyncSession, keys: Iterable[str]) -> list[str]:
    """Hold those of these addresses no other transaction holds, without waiting;
    the keys taken, in key order."""
    by_id: dict[int, list[str]] = {}
    for key in sorted(set(keys)):
        by_id.setdefault(_lock_id(key), []).append(key)
    if not by_id:
        return []
    taken = await session.scalars(_TRY_LOCK, {"space": _ADDRESS_LOCK_SPACE, "ids": sorted(by_id)})
    return sorted(key for lock_id in taken for key in by_id[lock_id])
