"""A planned bulk call sends the items of whichever owners it is given: all of them, a
part the worker split off by the operation's limits, or what narrowing left."""

from __future__ import annotations

import asyncio

import pytest

from dispatcher.providers.base import BulkCall, OperationLimits


def test_a_call_sends_the_items_of_the_owners_it_is_given_in_their_order() -> None:
    sent: list[list[str]] = []

    async def send_items(items: list[str]) -> None:
        sent.append(items)

    first, second, third = object(), object(), object()
    call = BulkCall.of("suppress", [(first, "a"), (second, "b"), (third, "c")], send_items)

    async def run() -> None:
        await call.send(call.owners)
        await call.send([third, first])

    asyncio.run(run())
    assert call.owners == [first, second, third]
    assert sent == [["a", "b", "c"], ["c", "a"]]


def test_an_operation_takes_at_least_one_item_per_call() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        OperationLimits(max_items=0)
