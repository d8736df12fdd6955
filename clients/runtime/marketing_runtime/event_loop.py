"""The asyncio event loop the processes run on.

uvloop (libuv under the asyncio API) schedules callbacks, futures and socket
reads in C: a unary TrackEvent at 128 in flight costs about a tenth less CPU
on it (README, Performance). `MARKETING_EVENT_LOOP=asyncio` falls back to the
standard loop, e.g. to rule the loop out when chasing a bug.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

import uvloop

EventLoop = Literal["uvloop", "asyncio"]
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], loop: EventLoop) -> T:
    if loop == "uvloop":
        return uvloop.run(main)
    return asyncio.run(main)
