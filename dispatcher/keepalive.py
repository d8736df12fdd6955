"""Holding messages longer than JetStream's ack wait without losing them to
another replica."""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.msg import Msg

from service.bus.topology import ACK_WAIT_S


async def keep_in_progress(messages: list[Msg]) -> None:
    """Tell JetStream every ack_wait/3 that we are still working on these, so
    waits and retries do not make it redeliver them elsewhere. Cancel when done."""
    while True:
        await asyncio.sleep(ACK_WAIT_S / 3)
        for msg in messages:
            with contextlib.suppress(Exception):
                await msg.in_progress()
