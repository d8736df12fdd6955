"""What to do with the items of a bulk call the provider refused for good.

A permanent refusal of a bulk call may name the items it objects to (Klaviyo's
error pointers, turned into `PermanentProviderError.item_indexes`). Those fail
and the others are sent again in a call of their own. When it names none, the
call is split in halves, each sent again, until the refused items stand alone:
a lone refused item fails. Every round takes away an item or splits a call, so
n items take at most 2n - 1 calls, the refused one included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Narrowed(Generic[T]):
    """The refused call's items: those that failed, and those to send again
    (each group in a call of its own, in this order)."""

    failed: list[T]
    retry: list[list[T]]


def narrow(items: Sequence[T], blamed_indexes: Iterable[int]) -> Narrowed[T]:
    """`blamed_indexes`: the positions in `items` the refusal named (others are ignored)."""
    blamed = {i for i in blamed_indexes if 0 <= i < len(items)}
    if blamed:
        rest = [item for i, item in enumerate(items) if i not in blamed]
        return Narrowed([items[i] for i in sorted(blamed)], [rest] if rest else [])
    if len(items) <= 1:
        return Narrowed(list(items), [])
    middle = len(items) // 2
    return Narrowed([], [list(items[:middle]), list(items[middle:])])
