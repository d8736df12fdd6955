"""A sync stage reads a batch's chunks one at a time, letting the event loop go between
them, so that requests stamped by the budget meanwhile leave on time."""

from __future__ import annotations

import asyncio
from typing import Any

from dispatcher.delivery.sync_stage import ChunkStage


class _Reader:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def _read(self, msg: Any) -> Any:
        self.events.append(f"read {msg}")
        return None if msg == "unreadable" else msg


def test_other_tasks_run_between_the_chunks_of_a_batch() -> None:
    events: list[str] = []

    async def request_due() -> None:
        for _ in range(2):
            events.append("request sent")
            await asyncio.sleep(0)

    async def main() -> list[Any]:
        reader = _Reader(events)
        other = asyncio.create_task(request_due())
        messages: list[Any] = ["a", "unreadable", "b"]
        chunks = await ChunkStage._read_each(reader, messages)  # type: ignore[arg-type]
        await other
        return chunks

    assert asyncio.run(main()) == ["a", "b"]
    assert events == ["read a", "request sent", "read unreadable", "request sent", "read b"]
